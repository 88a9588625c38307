"""The generic types of the detection and segmentation sources: named splits of example dicts.

A source knows its classes and splits; reading a split gives an `ExampleSplit`
(example dicts in a fixed order, and a function building their
``tf.data.Dataset``). What an example dict holds is the task's business
(`keras_coordatt.data.detection.source`, `keras_coordatt.data.segmentation.source`).
"""

import dataclasses
from typing import Callable
from typing import Sequence


@dataclasses.dataclass(frozen=True)
class ExampleSplit:
    """One split of a source, in a fixed order.

    Args:
        name: the split's name as the user wrote it.
        examples: the example dicts: a list for folders (images kept as
            paths), a `StreamedExamples` for tensorflow-datasets (decoded as
            it is read).
        dataset_fn: builds the split's ``tf.data.Dataset`` (``as_tf_dataset``).
        notes: what the reader left out (COCO boxes without area), or "".
    """

    name: str
    examples: Sequence[dict]
    dataset_fn: Callable[[], object] = dataclasses.field(repr=False)  # a tf.data.Dataset
    notes: str = ""

    @property
    def num_examples(self):
        """How many examples the split holds."""
        return len(self.examples)

    def as_tf_dataset(self):
        """The split's examples decoded, one dict of tensors each, in the order of ``examples``."""
        return self.dataset_fn()


@dataclasses.dataclass(frozen=True)
class ExampleSource:
    """A named source: its classes and splits.

    Args:
        name: the spec it was opened with (``"voc:/data/trees"``).
        class_names: label (or mask value) ``i`` is ``class_names[i]``.
        splits: the split names.
        read_split: ``read_split(split, limit=None)`` returns an
            `ExampleSplit` of the first ``limit`` examples (all when None);
            a ValueError listing ``splits`` for an unknown name.
        default_eval_split: the split to evaluate on when none is named.
        notes: provenance and layout, a line or two.
        category_ids: for COCO sources, the category id of each label
            (``category_ids[label]``) for writing results in COCO's ids;
            None for others.
    """

    name: str
    class_names: list[str]
    splits: tuple[str, ...]
    read_split: Callable[..., ExampleSplit] = dataclasses.field(repr=False)
    default_eval_split: str
    notes: str = ""
    category_ids: list[int] | None = None

    def as_tf_dataset(self, split, limit=None):
        """The ``tf.data.Dataset`` of a split (a name or an `ExampleSplit`)."""
        if not isinstance(split, ExampleSplit):
            split = self.read_split(split, limit)
        return split.as_tf_dataset()
