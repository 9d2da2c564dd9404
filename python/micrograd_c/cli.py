"""The ``micrograd-c`` command: train an MLP on a CSV file of your own, then predict with it.

    micrograd-c train iris.csv --target species --loss cross_entropy --out iris.safetensors
    micrograd-c predict iris.safetensors new_flowers.csv > predictions.csv

The same runs as ``python -m micrograd_c train|predict``. The CSV is read by the C library (RFC 4180:
a header row, quoted fields, CRLF or LF); a malformed file stops with one line naming the line at fault.
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

from micrograd_c import _core

PROG = "micrograd-c"
LOSSES = ("svm", "mse", "bce", "cross_entropy")
MAX_CLASSES = 1000
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


def _hidden_sizes(text):
    text = text.strip()
    if text in ("", "none"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 16,16, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be at least 1, got {text!r}")
    return sizes


def _at_least(minimum, kind=int):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value >= minimum) or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _positive_float(text):
    value = _at_least(0.0, float)(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def build_parser(prog=PROG):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train micrograd-c's multilayer perceptrons on your own CSV data and predict with them.",
        epilog=f"example:\n  {prog} train data.csv --target label --loss svm --out model.safetensors\n"
               f"  {prog} predict model.safetensors data.csv\n\n"
               f"'{prog} COMMAND --help' explains each command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train an MLP on a CSV file and save it",
        description="Train an MLP (micrograd's: ReLU hidden layers, a linear output layer) on a CSV file\n"
                    "and save it as a safetensors model file.",
        epilog=TRAIN_EPILOG.format(prog=prog), formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("data", metavar="DATA.csv",
                       help="the training data: a CSV file with a header row (comma-separated, quotes allowed)")
    train.add_argument("--target", "-t", required=True, metavar="COLUMN",
                       help="the column to predict (required)")
    train.add_argument("--loss", required=True, choices=LOSSES,
                       help="what to learn, which fixes how the target is read (see below) (required)")
    train.add_argument("--features", metavar="A,B,...",
                       help="the feature columns, comma-separated (default: every column but the target)")
    train.add_argument("--hidden", type=_hidden_sizes, default=[16, 16], metavar="N,N,...",
                       help="the hidden layers' sizes, comma-separated; 'none' for no hidden layer "
                            "(default: 16,16)")
    train.add_argument("--epochs", type=_at_least(1), default=100, metavar="N",
                       help="passes over the data (default: 100)")
    train.add_argument("--batch-size", type=_at_least(0), default=0, metavar="N",
                       help="samples per update; 0 for the whole data set in one batch (default: 0)")
    train.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adam",
                       help="the update rule, as PyTorch's SGD, Adam or AdamW (default: adam)")
    train.add_argument("--lr", type=_positive_float, default=None, metavar="RATE",
                       help="the learning rate (default: 0.1 for sgd, 0.01 for adam and adamw)")
    train.add_argument("--l2", type=_at_least(0.0, float), default=0.0, metavar="ALPHA",
                       help="adds ALPHA * sum(p**2) over all parameters to the loss, as micrograd's demo "
                            "does with 1e-4 (default: 0)")
    train.add_argument("--seed", type=_at_least(0), default=0, metavar="N",
                       help="seeds the initial weights and the order of samples (default: 0); the same "
                            "seed gives the same model")
    train.add_argument("--threads", type=_at_least(0), default=0, metavar="N",
                       help="training threads; 0 for every core (default: 0); the model is the same "
                            "for any number")
    train.add_argument("--no-standardize", dest="standardize", action="store_false",
                       help="train on the raw features (and mse target) instead of standardised ones")
    train.add_argument("--out", "-o", default="model.safetensors", metavar="MODEL",
                       help="where to save the model (default: model.safetensors); an existing file is "
                            "replaced atomically")
    train.add_argument("--quiet", "-q", action="store_true",
                       help="no progress bar and no summary: only errors are printed")
    train.set_defaults(run=train_command)

    predict = commands.add_parser(
        "predict", help="predict with a saved model: a CSV of predictions on stdout",
        description="Predict with a model saved by 'train': one output row for every row of DATA.csv,\n"
                    "as CSV with a header row, on stdout.",
        epilog=PREDICT_EPILOG.format(prog=prog), formatter_class=argparse.RawDescriptionHelpFormatter)
    predict.add_argument("model", metavar="MODEL", help="a model file saved by 'train'")
    predict.add_argument("data", metavar="DATA.csv",
                         help="the rows to predict: a CSV file with (at least) the model's feature columns")
    predict.add_argument("--output", "-o", metavar="FILE", default=None,
                         help="write the predictions to FILE instead of stdout")
    predict.add_argument("--quiet", "-q", action="store_true",
                         help="do not report the accuracy when DATA.csv holds the target column")
    predict.set_defaults(run=predict_command)
    return parser


# ---- reading data ----


def _read_csv(path, allow_no_rows=False):
    try:
        return _core.read_csv(path, allow_no_rows=allow_no_rows)
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise CliError(f"{path}: {e}") from None


def _matrix(table, path, columns):
    try:
        return table.matrix(columns)
    except ValueError as e:
        raise CliError(f"{path}: {e}") from None


def _names(names, limit=12):
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _label_key(text, numeric):
    return float(text) if numeric else text


def _classes(labels, table, path, target):
    """The distinct labels, sorted (by value when every label is a number, so 2 comes before 10)."""
    labels = [label.strip() for label in labels]
    for i, label in enumerate(labels):
        if not label:
            raise CliError(f"{path}: line {table.line(i)}, column {target!r}: the cell is empty, a label is needed")
    numeric = True
    for label in labels:
        try:
            numeric = math.isfinite(float(label))
        except ValueError:
            numeric = False
        if not numeric:
            break
    first = {}  # key -> the text it was first written as, which predict prints back
    for label in labels:
        first.setdefault(_label_key(label, numeric), label)
    keys = sorted(first)
    return [first[key] for key in keys], {key: index for index, key in enumerate(keys)}, numeric


def _targets(loss, table, path, target):
    """(y for fit, number of outputs, metadata describing the target)."""
    if loss == "mse":
        return [row[0] for row in _matrix(table, path, [target])], 1, {}
    labels = table.column(target)
    classes, index, numeric = _classes(labels, table, path, target)
    k = len(classes)
    if loss in ("svm", "bce") and k != 2:
        raise CliError(f"{path}: the {loss} loss needs a target with 2 distinct values, column {target!r} has "
                       f"{k}: {_names(classes)}" + ("; use --loss cross_entropy" if k > 2 else ""))
    if k < 2:
        raise CliError(f"{path}: column {target!r} has a single value {classes[0]!r}: nothing to classify")
    if k > MAX_CLASSES:
        raise CliError(f"{path}: column {target!r} has {k} distinct values, more than {MAX_CLASSES} classes; "
                       f"is it a numeric target for --loss mse?")
    y = [index[_label_key(label.strip(), numeric)] for label in labels]
    if loss == "svm":
        y = [2 * v - 1 for v in y]
    return y, (k if loss == "cross_entropy" else 1), {"cli.classes": json.dumps(classes)}


def _mean_std(columns):
    """Mean and (population) standard deviation of each column; a constant column gets 1."""
    means, stds = [], []
    for values in columns:
        mean = math.fsum(values) / len(values)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
        means.append(mean)
        stds.append(std if std > 0 and math.isfinite(std) else 1.0)
    return means, stds


def _standardize(X, means, stds):
    return [[(v - m) / s for v, m, s in zip(row, means, stds)] for row in X]


# ---- train ----


def train_command(args):
    from micrograd_c import optim
    from micrograd_c._progress import Progress
    from micrograd_c.nn import MLP

    table = _read_csv(args.data)
    header = table.header
    if args.target not in header:
        raise CliError(f"{args.data} has no column {args.target!r} to use as the target; its columns are "
                       f"{_names(header)}")
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

    X = _matrix(table, args.data, features)
    y, n_outputs, metadata = _targets(args.loss, table, args.data, args.target)
    metadata.update({"cli.version": "1", "cli.loss": args.loss, "cli.target": args.target,
                     "cli.features": json.dumps(features)})
    if args.standardize:
        means, stds = _mean_std(list(zip(*X)))
        X = _standardize(X, means, stds)
        metadata.update({"cli.mean": json.dumps(means), "cli.std": json.dumps(stds)})
        if args.loss == "mse":
            (y_mean,), (y_std,) = _mean_std([y])
            y = [(v - y_mean) / y_std for v in y]
            metadata.update({"cli.target_mean": json.dumps(y_mean), "cli.target_std": json.dumps(y_std)})

    random.seed(args.seed)  # micrograd draws its initial weights from `random`
    model = MLP(len(features), args.hidden + [n_outputs])
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    kind = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}[args.optimizer]
    optimizer = kind(model.parameters(), lr=lr)
    progress = None if args.quiet else Progress(args.epochs, label="epoch", stream=sys.stderr)

    def on_epoch(epoch, loss, accuracy):
        if progress:
            metrics = {"loss": loss} if math.isnan(accuracy) else {"loss": loss, "accuracy": accuracy}
            progress.update(epoch + 1, **metrics)

    history = model.fit(X, y, loss=args.loss, optimizer=optimizer, epochs=args.epochs,
                        batch_size=args.batch_size or None, l2=args.l2, seed=args.seed,
                        threads=args.threads or None, verbose=False, callback=on_epoch)
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
        print(f"trained MLP({len(features)}, [{shape}]) on {len(X)} rows, {args.epochs} epochs: {result}")
        print(f"saved {args.out}")
    return 0


# ---- predict ----


def _sigmoid(s):
    return 1.0 / (1.0 + math.exp(-s)) if s >= 0 else math.exp(s) / (1.0 + math.exp(s))


def _softmax(scores):
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = math.fsum(exps)
    return [e / total for e in exps]


def _metadata_list(metadata, key, path, length=None):
    try:
        value = json.loads(metadata[key])
        if not isinstance(value, list) or (length is not None and len(value) != length):
            raise ValueError
    except (ValueError, TypeError):
        raise CliError(f"{path}: the metadata {key!r} is damaged") from None
    return value


def predict_command(args):
    from micrograd_c.nn import MLP

    try:
        open(args.model, "rb").close()  # a missing file gets the system's own words
        model = MLP.load(args.model)
    except OSError as e:
        raise CliError(f"cannot read {args.model}: {e.strerror or e}") from None
    except ValueError as e:
        raise CliError(f"{args.model}: {e}") from None
    metadata = getattr(model, "metadata", None) or {}
    n_inputs = len(model.layers[0].neurons[0].w)
    n_outputs = len(model.layers[-1].neurons)
    table = _read_csv(args.data, allow_no_rows=True)
    header = table.header

    loss = metadata.get("cli.loss")
    if loss is not None:
        if loss not in LOSSES:
            raise CliError(f"{args.model}: unknown loss {loss!r} in the metadata")
        features = _metadata_list(metadata, "cli.features", args.model, n_inputs)
        missing = [name for name in features if name not in header]
        if missing:
            raise CliError(f"{args.data} has no column {missing[0]!r}, which the model needs "
                           f"(its features: {_names(features)})")
    else:
        # not saved by `train`: every column is an input, in order
        features = header
        if len(features) != n_inputs:
            raise CliError(f"the model takes {n_inputs} inputs, {args.data} has {len(features)} columns "
                           f"(and the model has no 'train' metadata naming its feature columns)")
    X = _matrix(table, args.data, features)
    if "cli.mean" in metadata:
        X = _standardize(X, _metadata_list(metadata, "cli.mean", args.model, n_inputs),
                         _metadata_list(metadata, "cli.std", args.model, n_inputs))
    outputs = model.predict(X) if X else []

    target = metadata.get("cli.target", "target")
    if loss is None:
        columns = [f"output_{j}" for j in range(n_outputs)]
        rows = [[repr(v) for v in out] for out in outputs]
        predicted = None
    elif loss == "mse":
        mean = float(metadata.get("cli.target_mean", 0.0))
        std = float(metadata.get("cli.target_std", 1.0))
        predicted = [out[0] * std + mean for out in outputs]
        columns, rows = [target], [[repr(v)] for v in predicted]
    else:
        classes = _metadata_list(metadata, "cli.classes", args.model)
        if len(classes) != (n_outputs if loss == "cross_entropy" else 2):
            raise CliError(f"{args.model}: the metadata names {len(classes)} classes for {n_outputs} outputs")
        if loss == "svm":
            columns = [target, "score"]
            predicted = [classes[1] if out[0] > 0 else classes[0] for out in outputs]
            rows = [[label, repr(out[0])] for label, out in zip(predicted, outputs)]
        else:
            probabilities = ([[1 - _sigmoid(out[0]), _sigmoid(out[0])] for out in outputs] if loss == "bce"
                             else [_softmax(out) for out in outputs])
            # the argmax of the scores, not of rounded probabilities: ties go to the first class
            predicted = [classes[max(range(len(out)), key=out.__getitem__)] if loss == "cross_entropy"
                         else classes[1 if out[0] > 0 else 0] for out in outputs]
            columns = [target] + [f"p({label})" for label in classes]
            rows = [[label] + [repr(p) for p in ps] for label, ps in zip(predicted, probabilities)]

    _write_rows(args.output, columns, rows)
    if not args.quiet and predicted is not None and target in header and rows:
        _report(table, args.data, target, loss, predicted)
    return 0


def _write_rows(path, columns, rows):
    if path is None:
        writer = csv_writer.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        sys.stdout.flush()
        return
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv_writer.writer(f, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}") from None


def _report(table, path, target, loss, predicted):
    """With the true target at hand, say how good the predictions are (on stderr: stdout is the CSV)."""
    if loss == "mse":
        try:
            truth = [row[0] for row in table.matrix([target])]
        except ValueError:
            return
        rmse = math.sqrt(math.fsum((p - t) ** 2 for p, t in zip(predicted, truth)) / len(truth))
        print(f"root-mean-square error {rmse:.6g} against the {target!r} column of {path}", file=sys.stderr)
        return
    truth = [label.strip() for label in table.column(target)]
    try:
        same = [float(p) == float(t) for p, t in zip(predicted, truth)]
    except ValueError:
        same = [p == t for p, t in zip(predicted, truth)]
    right = sum(same)
    print(f"accuracy {right / len(same):.1%} ({right} of {len(same)} rows) against the {target!r} column of "
          f"{path}", file=sys.stderr)


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
    except MemoryError:
        message = "out of memory"
    except ValueError as e:  # from the C library: its message is meant for the user
        message = str(e)
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        try:  # and Python's final flush of stdout must not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    print(f"{prog} {args.command}: error: {' '.join(message.split())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
