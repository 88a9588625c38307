"""Classification data: a source of labelled images, and its batched train and eval pipelines.

Sources (`source`: `Split`, `Source`): ELPV solar cells (`elpv`), an image
folder per class (`image_folder`), a tensorflow-datasets dataset (`tfds`);
`pipeline` turns one into batches (`load_datasets`) or raw images
(`load_images`).
"""
