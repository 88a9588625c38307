"""What the detection and segmentation demos share: the per-attention table and the runs plot."""

import numpy as np

from keras_coordatt.plotting import pyplot

ATTENTIONS = ("none", "se", "ca")


def results_table(runs, metrics, headers):
    """Markdown: per attention, the parameters, the number of runs and each metric's mean
    (+- the standard deviation over seeds where there are several)."""
    lines = ["| attention | params | runs | " + " | ".join(headers) + " |",
             "|---|---:|---:|" + "---:|" * len(headers)]
    for attention in ATTENTIONS:
        mine = [r for r in runs if r["attention"] == attention]
        if not mine:
            continue
        cells = []
        for key in metrics:
            values = np.array([r[key] for r in mine], float)
            spread = f" ± {values.std(ddof=1):.3f}" if len(values) > 1 else ""
            cells.append(f"{values.mean():.3f}{spread}")
        lines.append(f"| {attention} | {mine[0]['params']:,} | {len(mine)} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_runs(runs, metrics, headers, path, title):
    """One panel per metric, a dot per run and a line at each attention's mean."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    for axis, key, header in zip(axes[0], metrics, headers):
        for position, attention in enumerate(ATTENTIONS):
            values = [r[key] for r in runs if r["attention"] == attention]
            axis.scatter([position] * len(values), values, color=f"C{position}")
            if values:
                axis.hlines(np.mean(values), position - 0.25, position + 0.25, color=f"C{position}")
        axis.set_xticks(range(len(ATTENTIONS)), ATTENTIONS)
        axis.set_title(header)
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
