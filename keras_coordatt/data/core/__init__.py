"""What the classification, detection and segmentation data share.

- `splits`: the split names every source knows (``SPLIT_FOLDERS``,
  ``EVAL_SPLITS``), the evaluation split a source defaults to, fixed
  stratified and held-out splits, limits and the unknown-split error;
- `images`: the one list of image extensions and the one image decoder
  (a file that does not decode is an error naming it);
- `folders`: listing a dataset's folders without its hidden entries and
  stray files (said in one line), and the folders of installed wheels some
  built-in sources read;
- `tfds`: tensorflow-datasets: preparing a dataset (failing fast offline),
  its splits, and examples streamed from them;
- `batches`: the order, per-epoch seeds and batching the detection and
  segmentation pipelines share.
"""
