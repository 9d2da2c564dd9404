"""The ``micrograd-c`` command: train an MLP on a CSV file of your own, then predict with it.

    micrograd-c train iris.csv --target species --loss cross_entropy --out iris.safetensors
    micrograd-c predict iris.safetensors new_flowers.csv > predictions.csv

The same runs as ``python -m micrograd_c train|predict``. The CSV is read by the C library (RFC 4180:
a header row, quoted fields, CRLF or LF); a malformed file stops with one line naming the line at fault.
Its numbers go straight from C into NumPy float64 arrays (train reads the file a piece at a time), so
memory is about the arrays', not Python objects per cell. Every failure is one line on stderr: exit
status 2 for bad usage, 1 otherwise.
What predict needs besides the weights (the feature columns, the class labels, the scaling of the
features) is kept in the model file's metadata under keys starting with "cli.".
"""

import argparse
import csv as csv_writer
import json
import math
import os
import random
import sys

import numpy as np

from micrograd_c import _core

PROG = "micrograd-c"
LOSSES = ("svm", "mse", "bce", "cross_entropy")
MAX_CLASSES = 1000
INFER_CLASSES = 20  # with --loss left out, a target with at most this many integer or text values is classes
DEFAULT_LR = {"sgd": 0.1, "adam": 0.01, "adamw": 0.01}

TRAIN_EPILOG = """\
losses and targets:
  svm            two classes, any two values (numbers or text), trained as -1/+1 with
                 micrograd's max-margin loss; one output, its sign picks the class
  bce            two classes, trained as 0/1 with binary cross-entropy; one output (a logit)
  cross_entropy  k classes (numbers or text), one output per class, softmax cross-entropy
  mse            a numeric target, one output, mean squared error
Class labels are sorted (by value when all are numbers) and numbered from 0 (-1 for svm);
the model file keeps them, so predict prints the labels as the training data wrote them.

Every column but the target is a feature unless --features says otherwise; features must be
numbers. By default each feature (and an mse target) is standardised to mean 0 and standard
deviation 1 on the training data; predict applies the same scaling, read from the model file.

example:
  {prog} train iris.csv --target species --loss cross_entropy --hidden 16,16 \\
      --epochs 200 --out iris.safetensors
  {prog} predict iris.safetensors iris.csv > predictions.csv
"""

PREDICT_EPILOG = """\
output columns, named after the model's target column T:
  cross_entropy, bce  T (the predicted label), then p(LABEL) for every class
  svm                 T (the predicted label), then score (its sign picks the label)
  mse                 T (the predicted value)
A model saved without this command's metadata gets output_0, output_1, ...: its raw outputs, with
every column of the CSV as an input, in order.

When the CSV also holds the target column, the accuracy (or the root-mean-square error) is
reported on stderr.

example:
  {prog} predict iris.safetensors new_flowers.csv --output predictions.csv
"""


class CliError(Exception):
    """A problem with the user's input: reported as one line, no traceback."""


# ---- arguments ----

MAX_LAYER = 1 << 24  # the C library's limit on a layer's width (and on inputs)
MAX_LAYERS = 1000
MAX_EPOCHS = 10**9
MAX_SEED = 2**64 - 1
MAX_BATCH = 2**40
MAX_THREADS = 1024
MAX_RATE = 1e6  # --lr and --l2: larger is no learning rate, only overflow
MAX_PARAMS = 10**8  # the model's weights are Python Values: more takes minutes to build and gigabytes
MAX_DISTINCT = 10 * MAX_CLASSES  # distinct target texts read before giving up (strip() may merge some)


def _hidden_sizes(text):
    text = text.strip()
    if text in ("", "none"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 16,16, got {text[:40]!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be at least 1, got {text[:40]!r}")
    if any(size > MAX_LAYER for size in sizes):
        raise argparse.ArgumentTypeError(f"a layer has at most 2^24 = {MAX_LAYER} neurons, got {text[:40]!r}")
    if len(sizes) > MAX_LAYERS:
        raise argparse.ArgumentTypeError(f"at most {MAX_LAYERS} hidden layers, got {len(sizes)}")
    return sizes


def _int_range(minimum, maximum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be from {minimum} to {maximum}, got {text[:40]!r}")
        return value

    parse.__name__ = "int"
    return parse


def _float_range(minimum, maximum, above_minimum=False):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
        low = value > minimum if above_minimum else value >= minimum
        if not (math.isfinite(value) and low and value <= maximum):
            raise argparse.ArgumentTypeError(
                f"must be a number {'above' if above_minimum else 'from'} {minimum:g} "
                f"{'and at most' if above_minimum else 'to'} {maximum:g}, "
                f"got {text[:40]!r}"
            )
        return value

    parse.__name__ = "float"
    return parse


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line on stderr (exit status 2), with where to read more."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see '{self.prog} --help')\n")


def _version():
    try:
        from importlib import metadata

        return metadata.version("micrograd-c")
    except Exception:  # not installed as a distribution (a source tree): the package's own
        import micrograd_c

        return micrograd_c.__version__


def build_parser(prog=PROG):
    parser = _Parser(
        prog=prog,
        description="Train micrograd-c's multilayer perceptrons on your own CSV data and predict with them.",
        epilog=f"example:\n  {prog} train data.csv --target label --loss svm --out model.safetensors\n"
        f"  {prog} predict model.safetensors data.csv\n\n"
        f"'{prog} COMMAND --help' explains each command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{prog} {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser(
        "train",
        help="train an MLP on a CSV file and save it",
        description="Train an MLP (micrograd's: ReLU hidden layers, a linear output layer) on a CSV file\n"
        "and save it as a safetensors model file.",
        epilog=TRAIN_EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "data",
        metavar="DATA.csv",
        help="the training data: a CSV file with a header row (comma-separated, quotes allowed)",
    )
    train.add_argument("--target", "-t", required=True, metavar="COLUMN", help="the column to predict (required)")
    train.add_argument(
        "--loss",
        choices=LOSSES,
        help="what to learn, which fixes how the target is read (see below); left out, it is "
        "inferred from the target: bce for two values, cross_entropy for a few integer or "
        f"text classes (at most {INFER_CLASSES}), mse otherwise, and said",
    )
    train.add_argument(
        "--features",
        metavar="A,B,...",
        help="the feature columns, comma-separated (default: every column but the target)",
    )
    train.add_argument(
        "--hidden",
        type=_hidden_sizes,
        default=[16, 16],
        metavar="N,N,...",
        help="the hidden layers' sizes, comma-separated, each at most 2^24; 'none' for no hidden "
        "layer (default: 16,16)",
    )
    train.add_argument(
        "--epochs",
        type=_int_range(1, MAX_EPOCHS),
        default=100,
        metavar="N",
        help=f"passes over the data, 1 to {MAX_EPOCHS} (default: 100)",
    )
    train.add_argument(
        "--batch-size",
        type=_int_range(0, MAX_BATCH),
        default=0,
        metavar="N",
        help="samples per update; 0 for the whole data set in one batch (default: 0)",
    )
    train.add_argument(
        "--optimizer",
        choices=("sgd", "adam", "adamw"),
        default="adam",
        help="the update rule, as PyTorch's SGD, Adam or AdamW (default: adam)",
    )
    train.add_argument(
        "--lr",
        type=_float_range(0.0, MAX_RATE, above_minimum=True),
        default=None,
        metavar="RATE",
        help="the learning rate (default: 0.1 for sgd, 0.01 for adam and adamw)",
    )
    train.add_argument(
        "--l2",
        type=_float_range(0.0, MAX_RATE),
        default=0.0,
        metavar="ALPHA",
        help="adds ALPHA * sum(p**2) over all parameters to the loss, as micrograd's demo does with 1e-4 (default: 0)",
    )
    train.add_argument(
        "--init",
        choices=_core.INITS,
        default="kaiming_uniform",
        help="the initial weights: kaiming_uniform (PyTorch's bound for ReLU layers, scaled by "
        "the fan-in), xavier_uniform, or micrograd (uniform(-1, 1), which saturates with "
        "many features) (default: kaiming_uniform)",
    )
    train.add_argument(
        "--seed",
        type=_int_range(0, MAX_SEED),
        default=0,
        metavar="N",
        help="seeds the initial weights and the order of samples, 0 to 2^64-1 (default: 0); the "
        "same seed gives the same model",
    )
    train.add_argument(
        "--threads",
        type=_int_range(0, MAX_THREADS),
        default=0,
        metavar="N",
        help="training threads; 0 for every core (default: 0); the model is the same for any number",
    )
    train.add_argument(
        "--no-standardize",
        dest="standardize",
        action="store_false",
        help="train on the raw features (and mse target) instead of standardised ones",
    )
    train.add_argument(
        "--out",
        "-o",
        default="model.safetensors",
        metavar="MODEL",
        help="where to save the model (default: model.safetensors); an existing file is replaced atomically",
    )
    train.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar and no summary: only errors are printed"
    )
    train.set_defaults(run=train_command)

    predict = commands.add_parser(
        "predict",
        help="predict with a saved model: a CSV of predictions on stdout",
        description="Predict with a model saved by 'train': one output row for every row of DATA.csv,\n"
        "as CSV with a header row, on stdout.",
        epilog=PREDICT_EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("model", metavar="MODEL", help="a model file saved by 'train'")
    predict.add_argument(
        "data", metavar="DATA.csv", help="the rows to predict: a CSV file with (at least) the model's feature columns"
    )
    predict.add_argument(
        "--output", "-o", metavar="FILE", default=None, help="write the predictions to FILE instead of stdout"
    )
    predict.add_argument(
        "--quiet", "-q", action="store_true", help="do not report the accuracy when DATA.csv holds the target column"
    )
    predict.set_defaults(run=predict_command)
    return parser


# ---- reading data: the CSV stays in C, numbers go straight into NumPy arrays ----


def _read_csv(path, allow_no_rows=False):
    try:
        return _core.read_csv(path, allow_no_rows=allow_no_rows)
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise CliError(f"{path}: {e}") from None


def _header(table, path):
    try:
        return table.header
    except ValueError as e:  # not UTF-8
        raise CliError(f"{path}: {e}") from None


def _numbers(table, path, columns):
    """The cells of `columns` as a float64 array (rows, len(columns)), converted in C: 8 bytes a cell."""
    X = np.empty((len(table), len(columns)), dtype=np.float64)
    try:
        table.fill_matrix(columns, X)
    except ValueError as e:
        raise CliError(f"{path}: {e}") from None
    return X


def _distinct(table, path, column, limit):
    """(the distinct texts of a column in order of appearance, each row's index into them as an intp array)."""
    codes = np.empty(len(table), dtype=np.float64)
    try:
        distinct = table.factorize(column, codes, limit)
    except ValueError as e:  # not UTF-8, or too many
        raise CliError(f"{path}: {e}") from None
    return distinct, codes.astype(np.intp)


def _names(names, limit=12):
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _label_key(text, numeric):
    return float(text) if numeric else text


def _is_number(text):
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _classes(data, path, target):
    """(the distinct labels sorted, by value when every label is a number so 2 comes before 10; each row's
    class index as an array)."""
    labels = [label.strip() for label in data.distinct]  # " a" and "a" are one class
    for k, label in enumerate(labels):
        if not label:
            row = int(np.flatnonzero(data.codes == k)[0])
            raise CliError(f"{path}: line {data.line(row)}, column {target!r}: the cell is empty, a label is needed")
    numeric = all(_is_number(label) for label in labels)
    first = {}  # key -> the text it was first written as, which predict prints back
    for label in labels:
        first.setdefault(_label_key(label, numeric), label)
    keys = sorted(first)
    index = {key: i for i, key in enumerate(keys)}
    remap = np.array([index[_label_key(label, numeric)] for label in labels], dtype=np.float64)
    return [first[key] for key in keys], remap[data.codes.astype(np.intp)]


def _targets(loss, data, path, target):
    """(y for fit, number of outputs, metadata describing the target)."""
    if loss == "mse":
        return data.y, 1, {}
    classes, y = _classes(data, path, target)
    k = len(classes)
    if loss in ("svm", "bce") and k != 2:
        raise CliError(
            f"{path}: the {loss} loss needs a target with 2 distinct values, column {target!r} has "
            f"{k}: {_names(classes)}" + ("; use --loss cross_entropy" if k > 2 else "")
        )
    if k < 2:
        raise CliError(f"{path}: column {target!r} has a single value {classes[0]!r}: nothing to classify")
    if k > MAX_CLASSES:
        raise CliError(
            f"{path}: column {target!r} has {k} distinct values, more than {MAX_CLASSES} classes; "
            f"is it a numeric target for --loss mse?"
        )
    if loss == "svm":
        y = 2 * y - 1
    return y, (k if loss == "cross_entropy" else 1), {"cli.classes": json.dumps(classes)}


# ---- reading training data a piece at a time: memory for the arrays, not for the whole file's text ----

PIECE_BYTES = 1 << 20


class _PieceProblem(Exception):
    """A piece did not parse or convert: the whole file is read again, for the message with its own lines."""


class _Columns:
    """What training takes from a CSV, as arrays: the feature columns' numbers (X), the target's numbers
    (y, for mse) or its distinct texts and each row's index into them (distinct, codes); each row's line."""

    def __init__(self, header, n_rows, n_features, numeric_target):
        self.header, self.rows = header, 0
        self.X = np.empty((n_rows, n_features), dtype=np.float64)  # untouched pages cost nothing
        self.y = np.empty((n_rows, 1), dtype=np.float64) if numeric_target else None
        self.codes = None if numeric_target else np.empty(n_rows, dtype=np.float64)
        self.lines = np.empty(n_rows, dtype=np.float64)
        self.distinct, self._index = [], {}

    def line(self, row):
        return int(self.lines[row])

    def _arrays(self):
        return [a for a in (self.X, self.y, self.codes, self.lines) if a is not None]

    def reserve(self, n):
        """Room for n more rows: the arrays grow in place (realloc), never copied beside themselves."""
        if self.rows + n <= len(self.X):
            return
        size = max(2 * len(self.X), self.rows + n)
        for a in self._arrays():
            a.resize((size,) + a.shape[1:], refcheck=False)

    def finish(self):
        for a in self._arrays():
            a.resize((self.rows,) + a.shape[1:], refcheck=False)
        return self

    def add(self, table, features, target, line_offset):
        """The rows of one parsed piece; line_offset maps its lines to the file's."""
        n, at = len(table), self.rows
        self.reserve(n)
        table.fill_matrix(features, self.X[at : at + n])
        table.fill_lines(self.lines[at : at + n])
        self.lines[at : at + n] += line_offset
        if self.y is not None:
            table.fill_matrix([target], self.y[at : at + n])
        else:
            codes = np.empty(n, dtype=np.float64)
            distinct = table.factorize(target, codes, MAX_DISTINCT)
            for text in distinct:
                if text not in self._index:
                    self._index[text] = len(self.distinct)
                    self.distinct.append(text)
            if len(self.distinct) > MAX_DISTINCT:
                raise _PieceProblem  # the whole file's reading says how many
            remap = np.array([self._index[text] for text in distinct], dtype=np.float64)
            self.codes[at : at + n] = remap[codes.astype(np.intp)]
        self.rows += n


def _record_end(data, start, quotes_before):
    """Just past the last newline at or after `start` that ends a record, or -1. Quotes inside a quoted
    field are doubled, so a newline is outside quotes when an even number of quotes come before it; a
    stray quote in an unquoted field can fool this, but then a piece ends inside quotes and fails to
    parse, and the whole file is read instead."""
    outside = quotes_before + data.count(b'"', start)  # quotes before the end
    end = len(data)
    while True:
        newline = data.rfind(b"\n", start, end)
        if newline < 0:
            return -1
        outside -= data.count(b'"', newline, end)
        if outside % 2 == 0:
            return newline + 1
        end = newline


def _pieces(f):
    """The file's bytes in pieces of about PIECE_BYTES, each but the last ending at a record's end."""
    pending, quotes = bytearray(), 0
    while True:
        block = f.read(PIECE_BYTES)
        if not block:
            if pending:
                yield bytes(pending)
            return
        start = len(pending)
        pending += block
        cut = _record_end(pending, start, quotes)
        if cut < 0:
            quotes += block.count(b'"')
            continue
        yield bytes(pending[:cut])
        del pending[:cut]
        quotes = pending.count(b'"')


def _line_breaks(data):
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _parse_piece(data):
    try:
        return _core.parse_csv(data, allow_no_rows=True)
    except ValueError:
        raise _PieceProblem from None


SLOW_CSV_BYTES = 64 << 20  # past this a file takes a second or more to read: show how far it is


def _reading_progress(args, size):
    """A progress line over the MiB of a big file (None for small files or with --quiet)."""
    from micrograd_c._progress import Progress

    if args.quiet or size < SLOW_CSV_BYTES:
        return None
    return Progress(size >> 20, label=f"reading {os.path.basename(args.data)}: MiB", stream=sys.stderr)


def _columns_in_pieces(args, f, size):
    pieces = _pieces(f)
    first = next(pieces, None)  # the header and the first rows
    if first is None:
        raise _PieceProblem  # empty
    table = _parse_piece(first)
    header = _header(table, args.data)
    features = _features(args, header)
    columns = [header.index(name) for name in features]
    target = header.index(args.target)
    rows_guess = int(size / max(len(first), 1) * max(len(table), 1) * 1.05) + 1024
    data = _Columns(header, rows_guess, len(features), args.loss == "mse")
    # later pieces get a header of made-up names, so they parse alone; lines count from the file's start
    made_up = ",".join(f"c{j}" for j in range(len(header))).encode() + b"\n"
    piece, offset, breaks, total = first, 0, 0, 0
    progress = _reading_progress(args, size)
    while True:
        total += len(piece)
        if total > _core.CSV_MAX_BYTES:
            raise _PieceProblem
        if progress:
            progress.update(min(total >> 20, progress.total))
        try:
            data.add(table, columns, target, offset)
        except ValueError:
            raise _PieceProblem from None
        breaks += _line_breaks(piece)
        piece = next(pieces, None)
        if piece is None:
            break
        table = _parse_piece(made_up + piece)
        offset = breaks - 1  # the made-up header is line 1 of the piece
    if data.rows == 0:
        raise _PieceProblem  # the header only
    return data.finish(), features


# ---- standardising without overflow: every step works on values scaled by a power of two ----


def _power_of_two_above(magnitude):
    """A power of two p with magnitude / p < 2 (exact to divide by, and finite for any finite magnitude)."""
    if not magnitude > 0:
        return 1.0
    return math.ldexp(1.0, math.frexp(magnitude)[1] - 1)


def _mean_std(X):
    """Mean and (population) standard deviation of each column of X; a constant column gets 1.

    Values near 1e308 would overflow a plain sum or square, so each column is first divided by a power of
    two near its largest magnitude (exactly), summed there, and scaled back; the results are finite, as a
    mean and a population standard deviation are at most the largest magnitude."""
    means, stds = [], []
    for j in range(X.shape[1]):
        column = X[:, j]
        scale = _power_of_two_above(float(np.max(np.abs(column)))) if len(column) else 1.0
        scaled = column / scale
        mean = float(np.mean(scaled))
        scaled -= mean
        std = math.sqrt(float(np.dot(scaled, scaled)) / len(scaled))
        mean, std = mean * scale, std * scale
        means.append(mean if math.isfinite(mean) else 0.0)
        stds.append(std if std > 0 and math.isfinite(std) else 1.0)
    return means, stds


def _standardize(X, means, stds, path, rows, columns, what="the training data"):
    """X[:, j] = (X[:, j] - means[j]) / stds[j] in place, computed on values scaled by a power of two so no
    step overflows; a value whose standardised form is beyond a double's range is refused by line."""
    for j, (mean, std) in enumerate(zip(means, stds)):
        scale = _power_of_two_above(max(abs(mean), std))
        column = X[:, j]
        with np.errstate(over="ignore", invalid="ignore"):  # checked below, with the line at fault
            column /= scale
            column -= mean / scale
            column /= std / scale
        bad = np.flatnonzero(~np.isfinite(column))
        if len(bad):
            raise CliError(
                f"{path}: line {rows.line(int(bad[0]))}, column {columns[j]!r}: the value is too far "
                f"from {what} (mean {mean:.6g}, standard deviation {std:.6g}) to standardise"
            )
    return X


# ---- train ----

PYTHON_BYTES_PER_PARAM = 160  # a Value (measured: about 106 bytes) and its places in the model's lists
C_DOUBLES_PER_PARAM = 9  # fit's copy of the weights, their gradients, the weights packed for the products, the
# optimizer's state, save's copy
FIT_CHUNK = 256  # fit runs a batch through its layers this many samples at a time
GEMM_SCRATCH = 1.25 * 2**20  # the packing space each of fit's threads keeps, in bytes


def _memory_available():
    """Bytes this process may still allocate: the system's available memory, or less under a cgroup limit."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    available = _under_address_limit(available)
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            available = min(available, max(int(limit) - used, 0))
    except (OSError, ValueError):
        pass
    return available


def _under_address_limit(available):
    """`ulimit -v` caps the address space: what is left of it, if less."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return available
        with open("/proc/self/status") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        return min(available, max(limit - size, 0))
    except (ImportError, OSError, ValueError, StopIteration):
        return available


def _fit_bytes(n_inputs, sizes, rows, batch_size, threads):
    """(parameters, bytes) that building the model and fit() will hold beyond the data already read."""
    widths = [n_inputs] + sizes
    n_params = sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    batch = rows if batch_size == 0 or batch_size > rows else batch_size
    chunk = min(batch, FIT_CHUNK)
    workers = threads or os.cpu_count() or 1
    work = (n_inputs + sum(sizes) + 2 * max(sizes)) * chunk  # a chunk's inputs, activations and gradients
    doubles = n_params * C_DOUBLES_PER_PARAM + work + rows * (n_inputs + 2)
    return n_params, n_params * PYTHON_BYTES_PER_PARAM + 8 * doubles + workers * GEMM_SCRATCH


def _gib(n):
    return f"{n / 2**30:.3g} GiB" if n >= 2**28 else f"{n / 2**20:.3g} MiB"


def _check_size(n_inputs, sizes, rows, args):
    """Refuse, before allocating anything, a model too large to build or to train in the memory there is."""
    if n_inputs > MAX_LAYER:
        raise CliError(f"{args.data} has {n_inputs} feature columns, more than the 2^24 a model takes")
    n_params, need = _fit_bytes(n_inputs, sizes, rows, args.batch_size, args.threads)
    shape = f"MLP({n_inputs}, [{', '.join(str(n) for n in sizes)}])"
    if n_params > MAX_PARAMS:
        raise CliError(
            f"{shape} would have {n_params} parameters, more than the {MAX_PARAMS} this command trains; "
            f"use smaller --hidden layers"
        )
    available = _memory_available()
    if available is not None and need > available:
        hint = "; a --batch-size would need less" if args.batch_size == 0 and rows > 4096 else ""
        raise CliError(
            f"training {shape} ({n_params} parameters) on {rows} rows needs about {_gib(need)} of "
            f"memory, more than the {_gib(available)} available; use smaller --hidden layers{hint}"
        )


def _features(args, header):
    if args.target not in header:
        raise CliError(
            f"{args.data} has no column {args.target!r} to use as the target; its columns are {_names(header)}"
        )
    if args.features is None:
        features = [name for name in header if name != args.target]
    else:
        features = [name.strip() for name in args.features.split(",")]
        for name in features:
            if name not in header:
                raise CliError(f"{args.data} has no feature column {name!r}; its columns are {_names(header)}")
        if args.target in features:
            raise CliError(f"--features lists the target {args.target!r}: a model cannot take what it predicts")
        if len(set(features)) != len(features):
            raise CliError("--features lists a column twice")
    if not features:
        raise CliError(f"{args.data} has no feature columns: only the target {args.target!r}")
    return features


def _columns_of_table(args, table):
    """The same _Columns from a whole parsed file (where a piece failed: its messages name the file's lines)."""
    header = _header(table, args.data)
    features = _features(args, header)
    data = _Columns(header, len(table), len(features), args.loss == "mse")
    data.X = _numbers(table, args.data, features)
    table.fill_lines(data.lines)
    if args.loss == "mse":
        data.y = _numbers(table, args.data, [args.target])
    else:
        data.distinct, data.codes = _distinct(table, args.data, args.target, MAX_DISTINCT)
    data.rows = len(table)
    return data, features


def _training_columns(args):
    try:
        with open(args.data, "rb") as f:
            return _columns_in_pieces(args, f, os.fstat(f.fileno()).st_size)
    except (_PieceProblem, OSError):
        pass
    return _columns_of_table(args, _read_csv(args.data))  # raises what is wrong, naming its line


def _training_data(args):
    """(X, y, number of outputs, metadata) from the CSV, standardised if asked."""
    data, features = _training_columns(args)
    X = data.X
    y, n_outputs, metadata = _targets(args.loss, data, args.data, args.target)
    metadata.update(
        {"cli.version": "1", "cli.loss": args.loss, "cli.target": args.target, "cli.features": json.dumps(features)}
    )
    if args.standardize:
        means, stds = _mean_std(X)
        _standardize(X, means, stds, args.data, data, features)
        metadata.update({"cli.mean": json.dumps(means), "cli.std": json.dumps(stds)})
        if args.loss == "mse":
            (y_mean,), (y_std,) = _mean_std(y)
            _standardize(y, [y_mean], [y_std], args.data, data, [args.target])
            metadata.update({"cli.target_mean": json.dumps(y_mean), "cli.target_std": json.dumps(y_std)})
    return X, y, n_outputs, metadata


def _is_integer(text):
    try:
        return float(text) == int(float(text))
    except (ValueError, OverflowError):
        return False


def _infer_loss(args):
    """The loss a target calls for: 2 distinct values bce, a few integer or text classes cross_entropy, other
    numbers mse. Reads the target column once, in C."""
    table = _read_csv(args.data)
    if args.target not in _header(table, args.data):
        raise CliError(f"{args.data} has no column {args.target!r}; its columns are {_names(table.header)}")
    codes = np.empty(len(table), dtype=np.float64)
    try:
        distinct = [text.strip() for text in table.factorize(args.target, codes, INFER_CLASSES)]
    except ValueError:
        return "mse"  # more distinct values than classes: a number to fit (or a clear error from mse's reading)
    numeric = all(_is_number(text) for text in distinct)
    if len(set(distinct)) == 2:
        return "bce"
    return "cross_entropy" if not numeric or all(_is_integer(text) for text in distinct) else "mse"


def _is_number(text):
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def train_command(args):
    from micrograd_c import optim
    from micrograd_c._progress import Progress
    from micrograd_c.nn import MLP

    if args.loss is None:
        args.loss = _infer_loss(args)
        if not args.quiet:
            print(
                f"note: --loss {args.loss}, inferred from the {args.target!r} column (give --loss to choose)",
                file=sys.stderr,
            )
    X, y, n_outputs, metadata = _training_data(args)
    n_features = X.shape[1]
    _check_size(n_features, args.hidden + [n_outputs], len(X), args)

    random.seed(args.seed)  # micrograd draws its initial weights from `random`
    model = MLP(n_features, args.hidden + [n_outputs], init=args.init)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    kind = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}[args.optimizer]
    optimizer = kind(model.parameters(), lr=lr)
    progress = None if args.quiet else Progress(args.epochs, label="epoch", stream=sys.stderr)

    def on_epoch(epoch, loss, accuracy):
        if progress:
            metrics = {"loss": loss} if math.isnan(accuracy) else {"loss": loss, "accuracy": accuracy}
            progress.update(epoch, **metrics)

    threads = args.threads or None
    cores = _core.num_cores()
    if threads and threads > cores:  # fit would cap it with a warning: say it in our own words
        if not args.quiet:
            print(f"note: --threads {threads} is more than the {cores} cores; using {cores}", file=sys.stderr)
        threads = cores
    history = model.fit(
        X,
        y,
        loss=args.loss,
        optimizer=optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size or None,
        l2=args.l2,
        seed=args.seed,
        threads=threads,
        verbose=False,
        callback=on_epoch,
    )
    try:
        model.save(args.out, metadata=metadata)
    except OSError as e:
        raise CliError(f"cannot write {args.out}: {e.strerror or e}") from None
    if not args.quiet:
        last = history[-1]
        result = f"loss {last['loss']:.6g}"
        if not math.isnan(last["accuracy"]):
            result += f", accuracy {last['accuracy']:.1%}"
        shape = ", ".join(str(n) for n in args.hidden + [n_outputs])
        print(f"trained MLP({n_features}, [{shape}]) on {len(X)} rows, {args.epochs} epochs: {result}")
        print(f"saved {args.out}")
    return 0


# ---- predict ----

PREDICT_CHUNK = 4096  # rows computed and written at a time: output memory stays bounded


def _sigmoid(s):
    return 1.0 / (1.0 + math.exp(-s)) if s >= 0 else math.exp(s) / (1.0 + math.exp(s))


def _softmax(scores):
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = math.fsum(exps)
    return [e / total for e in exps]


class _Metadata:
    """The model file's "cli." metadata, each field checked as it is read: a damaged field is named."""

    def __init__(self, metadata, path):
        self.metadata, self.path = metadata, path

    def damaged(self, key, why):
        return CliError(f"{self.path}: the model's metadata {key!r} is damaged: {why}")

    def json(self, key):
        if key not in self.metadata:
            raise self.damaged(key, "it is missing")
        text = self.metadata[key]
        if not isinstance(text, str):
            raise self.damaged(key, "it is not text")
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise self.damaged(key, f"{text[:40]!r} is not JSON") from None

    def text(self, key, default=None):
        value = self.metadata.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.damaged(key, "it must be a non-empty text")
        return value

    def names(self, key, length=None):
        """A JSON list of distinct, non-empty strings (of `length` items if given)."""
        value = self.json(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.damaged(key, "it must be a list of names")
        if length is not None and len(value) != length:
            raise self.damaged(key, f"it has {len(value)} names for a model of {length}")
        if len(set(value)) != len(value):
            raise self.damaged(key, "it names the same thing twice")
        return value

    def number(self, key, default, positive=False):
        if key not in self.metadata:
            return default
        value = self.json(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.damaged(key, f"{value!r:.40} is not a number")
        return self._finite(key, value, positive, "it ")

    def numbers(self, key, length, positive=False):
        value = self.json(key)
        if not isinstance(value, list) or len(value) != length:
            raise self.damaged(key, f"it must be a list of {length} numbers, one per feature")
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self.damaged(key, f"item {i} is {v!r:.40}, not a number")
            value[i] = self._finite(key, v, positive, f"item {i} ")
        return value

    def _finite(self, key, v, positive, where=""):
        try:
            v = float(v)
        except OverflowError:  # a JSON integer beyond a double
            raise self.damaged(key, f"{where}is too large") from None
        if not math.isfinite(v) or (positive and not v > 0):
            raise self.damaged(key, f"{where}is {v!r}; it must be a {'positive ' if positive else ''}finite number")
        return v


def _looks_like_model(path):
    """Whether the file starts as a safetensors file does: an 8-byte little-endian size, then '{'."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}") from None
    return len(head) == 9 and head[8:9] == b"{"


def _load_model(path, data_path):
    from micrograd_c.nn import MLP

    if not _looks_like_model(path):
        swapped = (
            " (did you swap MODEL and DATA.csv?)"
            if path.lower().endswith((".csv", ".txt"))
            or os.path.abspath(path) == os.path.abspath(data_path)
            or _looks_like_text(path)
            else ""
        )
        raise CliError(f"{path} is not a model file: a model is a safetensors file saved by 'train'{swapped}")
    try:
        return MLP.load(path)
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        message = str(e)  # the loader's message names the file already, or should be given it
        raise CliError(message if path in message else f"{path}: {message}") from None


def _looks_like_text(path):
    try:
        with open(path, "rb") as f:
            head = f.read(512)
        head.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return b"\n" in head or b"," in head


def _model_inputs(args, model, header):
    """(loss or None, the feature columns, means and stds or None) from the model's metadata, checked."""
    raw = getattr(model, "metadata", None) or {}
    metadata = _Metadata(raw, args.model)
    n_inputs = len(model.layers[0].neurons[0].w)
    loss = raw.get("cli.loss")
    if loss is None:
        # not saved by `train`: every column is an input, in order
        if len(header) != n_inputs:
            raise CliError(
                f"the model takes {n_inputs} inputs, {args.data} has {len(header)} columns "
                f"(and the model has no 'train' metadata naming its feature columns)"
            )
        return None, header, None
    if loss not in LOSSES:
        raise CliError(f"{args.model}: unknown loss {loss!r:.40} in the metadata")
    features = metadata.names("cli.features", n_inputs)
    missing = [name for name in features if name not in header]
    if missing:
        raise CliError(
            f"{args.data} has no column {missing[0]!r}, which the model needs (its features: {_names(features)})"
        )
    scaling = None
    if "cli.mean" in raw or "cli.std" in raw:
        for key in ("cli.mean", "cli.std"):
            if key not in raw:
                raise metadata.damaged(key, "it is missing (the other half of the scaling is there)")
        scaling = metadata.numbers("cli.mean", n_inputs), metadata.numbers("cli.std", n_inputs, positive=True)
    return loss, features, scaling


def _output_columns(args, model, loss):
    """(output column names, classes or None, target name, (target mean, target std))."""
    raw = getattr(model, "metadata", None) or {}
    metadata = _Metadata(raw, args.model)
    n_outputs = len(model.layers[-1].neurons)
    if loss is None:
        return [f"output_{j}" for j in range(n_outputs)], None, None, None
    target = metadata.text("cli.target", "target")
    if loss == "mse":
        if n_outputs != 1:
            raise CliError(f"{args.model}: an mse model of this command has 1 output, this one {n_outputs}")
        scaling = metadata.number("cli.target_mean", 0.0), metadata.number("cli.target_std", 1.0, positive=True)
        return [target], None, target, scaling
    classes = metadata.names("cli.classes")
    if len(classes) != (n_outputs if loss == "cross_entropy" else 2) or (loss != "cross_entropy" and n_outputs != 1):
        raise CliError(f"{args.model}: the metadata names {len(classes)} classes for {n_outputs} outputs")
    columns = [target, "score"] if loss == "svm" else [target] + [f"p({label})" for label in classes]
    return columns, classes, target, None


def _outputs(model, X):
    """The model's outputs for every row, an array (rows, outputs), computed a chunk at a time."""
    n_outputs = len(model.layers[-1].neurons)
    out = np.empty((len(X), n_outputs), dtype=np.float64)
    for start in range(0, len(X), PREDICT_CHUNK):
        out[start : start + PREDICT_CHUNK] = model.predict(X[start : start + PREDICT_CHUNK])
    return out


def _rows(loss, classes, out, target_scaling):
    """(the predicted class indices or values, the CSV rows) for a chunk of outputs."""
    values = out.tolist()
    if loss is None:
        return None, [[repr(v) for v in row] for row in values]
    if loss == "mse":
        mean, std = target_scaling
        predicted = [row[0] * std + mean for row in values]
        return predicted, [[repr(v)] for v in predicted]
    if loss == "svm":
        predicted = [1 if row[0] > 0 else 0 for row in values]
        return predicted, [[classes[k], repr(row[0])] for k, row in zip(predicted, values)]
    if loss == "bce":
        probabilities = [[1 - _sigmoid(row[0]), _sigmoid(row[0])] for row in values]
        predicted = [1 if row[0] > 0 else 0 for row in values]
    else:
        probabilities = [_softmax(row) for row in values]
        # the argmax of the scores, not of rounded probabilities: ties go to the first class
        predicted = [max(range(len(row)), key=row.__getitem__) for row in values]
    return predicted, [[classes[k]] + [repr(p) for p in ps] for k, ps in zip(predicted, probabilities)]


def predict_command(args):
    model = _load_model(args.model, args.data)
    table = _read_csv(args.data, allow_no_rows=True)
    header = _header(table, args.data)
    loss, features, scaling = _model_inputs(args, model, header)
    columns, classes, target, target_scaling = _output_columns(args, model, loss)
    X = _numbers(table, args.data, features)
    if scaling is not None:
        _standardize(X, *scaling, args.data, table, features, what="the model's training data")
    out = _outputs(model, X)
    del X
    if loss is not None:
        bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
        if len(bad):
            raise CliError(
                f"{args.data}: line {table.line(int(bad[0]))}: the model's output is not a finite number "
                f"(the input is far outside the training data, or the model's weights are)"
            )

    predicted = [] if loss is not None else None
    with _output_stream(args.output) as stream:
        writer = csv_writer.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        for start in range(0, len(out), PREDICT_CHUNK):
            chunk, rows = _rows(loss, classes, out[start : start + PREDICT_CHUNK], target_scaling)
            writer.writerows(rows)
            if predicted is not None:
                predicted.extend(chunk)
    if not args.quiet and predicted is not None and target in header and len(out):
        _report(table, args.data, target, loss, predicted, classes)
    return 0


class _output_stream:
    """stdout, or the file --output names; a failed write (a full disk) is one CliError naming it."""

    def __init__(self, path):
        self.path, self.file = path, None

    def __enter__(self):
        if self.path is None:
            return sys.stdout
        try:
            self.file = open(self.path, "w", newline="", encoding="utf-8")
        except OSError as e:
            raise CliError(f"cannot write {self.path}: {e.strerror or e}") from None
        return self.file

    def __exit__(self, kind, error, traceback):
        try:
            if self.file is not None:
                self.file.close()
            else:
                sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            if kind is None:
                raise self._failed(e) from None
        if kind is not None and issubclass(kind, OSError) and not issubclass(kind, BrokenPipeError):
            raise self._failed(error) from None
        return False

    def _failed(self, error):
        if self.file is None:
            _silence_stdout()  # Python's own flush of stdout at exit must not fail a second time
        return CliError(f"cannot write {self.path or 'the predictions to stdout'}: {error.strerror or error}")


def _silence_stdout():
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _report(table, path, target, loss, predicted, classes):
    """With the true target at hand, say how good the predictions are (on stderr: stdout is the CSV)."""
    if loss == "mse":
        try:
            truth = _numbers(table, path, [target])[:, 0]
        except CliError:
            return
        rmse = math.sqrt(math.fsum((p - t) ** 2 for p, t in zip(predicted, truth.tolist())) / len(truth))
        print(f"root-mean-square error {rmse:.6g} against the {target!r} column of {path}", file=sys.stderr)
        return
    try:
        distinct, codes = _distinct(table, path, target, MAX_DISTINCT)
    except CliError:
        return  # not labels this model could have predicted
    truth = [label.strip() for label in distinct]
    numeric = all(_is_number(label) for label in truth + classes)
    key = (lambda text: float(text)) if numeric else (lambda text: text)
    # hit[d, k]: the d-th distinct text of the column is class k
    hit = np.array([[key(t) == key(c) for c in classes] for t in truth], dtype=bool)
    right = int(np.count_nonzero(hit[codes, np.asarray(predicted, dtype=np.intp)]))
    print(
        f"accuracy {right / len(codes):.1%} ({right} of {len(codes)} rows) against the {target!r} column of {path}",
        file=sys.stderr,
    )


# ---- main ----


def main(argv=None, prog=PROG):
    """Run the command line; returns the exit status (0 success, 1 error, 2 bad usage)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except CliError as e:
        message = str(e)
    except MemoryError as e:
        message = f"out of memory{': ' + str(e) if str(e) else ''}"
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        _silence_stdout()  # and Python's final flush of stdout must not fail again
        return 1
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # the last net: every expected failure is a CliError naming its cause
        message = f"{e.filename + ': ' if isinstance(e.filename, str) else ''}{e.strerror or e}"
    except (ValueError, OverflowError, RuntimeError, IndexError) as e:  # from the C library: meant for the user
        message = str(e) or type(e).__name__
    except Exception as e:  # a bug of this command: still one line, and what to report
        message = f"unexpected {type(e).__name__}: {e} (please report this)"
    print(f"{prog} {args.command}: error: {' '.join(message.split())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
