"""The ``wconv`` command: parses arguments, calls the library, maps errors to exit codes."""

from __future__ import annotations

import json
import sys
import traceback
from contextlib import contextmanager
from typing import Optional

import typer

from . import __version__
from .progress import shown
from .errors import EXIT_CODES, INTERNAL_ERROR, PIPE_CLOSED, WconvError, cut

app = typer.Typer(add_completion=True, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Convert neural-network weights between Keras, PyTorch and ONNX, and prove the port.")
STATE = {"debug": False, "progress": "auto"}
DIRECTIONS = [("keras", "torch"), ("torch", "keras"), ("keras", "onnx"),
              ("torch", "onnx"), ("onnx", "torch"), ("onnx", "keras")]

ModuleOption = typer.Option(None, "--module", help="The nn.Module of a torch state_dict: pkg.mod:Class or file.py:Class.")
ModuleArgsOption = typer.Option(None, "--module-args", help="JSON keyword arguments for the module's constructor.")
InputShapeOption = typer.Option(None, "--input-shape", help="Input shape without the batch axis: for a torch module "
                                "channels first (3,224,224); for a Keras model as it declares its input, channels "
                                "last (224,224,3), filling the sizes it leaves free (one shape for all its inputs: "
                                "a text model's length).")
InputDtypeOption = typer.Option(None, "--input-dtype", help="float32, or int64 for token ids (inferred from the "
                                                            "layers that read the input; checked when given).")
ForceOption = typer.Option(False, "--force", help="Overwrite existing outputs.")
JsonOption = typer.Option(False, "--json", help="Print a machine-readable report on stdout.")
KeepLayoutOption = typer.Option(False, "--keep-input-layout",
                                help="Keep a Keras source's channels-last interface in the torch/ONNX port.")
CheckOption = typer.Option(False, "--check", help="Run both models on seeded random inputs and compare.")
ExternalDataOption = typer.Option(False, "--external-data",
                                  help="Write an ONNX model's weights to <target>.data beside it (automatic past "
                                       "2 GiB, which one ONNX file cannot hold).")


def fail(message: str, code: int) -> None:
    typer.echo(f"wconv: error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def errors_to_exit_codes():
    """One line on stderr and a documented exit code; a traceback only with --debug."""
    try:
        yield
    except WconvError as error:
        if STATE["debug"]:
            traceback.print_exc()
        fail(cut(str(error)), error.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        _close_stdout_quietly()
        raise typer.Exit(PIPE_CLOSED) from None
    except typer.Exit:
        raise
    except Exception as error:  # a bug in wconv, not in the input
        if STATE["debug"]:
            traceback.print_exc()
        fail(f"internal error ({type(error).__name__}: {cut(str(error), 500)}); rerun with --debug and report it",
             INTERNAL_ERROR)


def _close_stdout_quietly() -> None:
    """The reader left: nothing more can be printed, and Python must not complain at exit either."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def parse_shape(text: Optional[str]):
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        fail(f"--input-shape '{text}': expected integers such as 3,224,224", 2)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"wconv {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
         progress: str = typer.Option("auto", "--progress", help="auto (bars on a terminal, else WCONV_PROGRESS or "
                                      "none), bar, lines (one stderr line per phase, for logs) or none."),
         version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                      help="Print the version and exit.")):
    from .progress import MODES

    if progress not in MODES:
        fail(f"--progress {progress!r}: expected one of {', '.join(MODES)}", 2)
    STATE["debug"], STATE["progress"] = debug, progress


def run_conversion(source, target, source_format, target_format, module, module_args, input_shape, force,
                   check, as_json, keep_input_layout=False, input_dtype=None, external_data=False):
    from . import api

    with errors_to_exit_codes():
        with shown(STATE["progress"]):
            result = api.convert(source, target, source_format=source_format, target_format=target_format,
                                 module=module, module_args=module_args, input_shape=parse_shape(input_shape),
                                 input_dtype=input_dtype, force=force, keep_input_layout=keep_input_layout,
                                 external_data=external_data)
        summary = {"source": str(source), "outputs": [str(p) for p in result.outputs],
                   "layers": len(result.graph.nodes), "parameters": result.graph.parameter_count(),
                   "notes": list(result.graph.source.get("notes", []))}
        report = None
        if check:
            from .validation import validate

            with shown(STATE["progress"]):
                report = validate(source, target, source_module=module, source_module_args=module_args,
                                  input_shape=parse_shape(input_shape), input_dtype=input_dtype)
            summary["check"] = report.to_dict()
        from .report import print_conversion

        print_conversion(summary, report, as_json)
        if report is not None and not report.ok:
            raise typer.Exit(1)


def conversion_command(source_format: str | None, target_format: str | None):
    """A conversion command; formats None are inferred (content for the source, extension for the target)."""
    source_help = f"The {source_format} model to read." if source_format else \
        "The model to read (format detected from its content)."
    target_help = f"Where to write the {target_format} model." if target_format else \
        "Where to write (format from the extension: .pt .keras .h5 .onnx .wconv)."

    def command(
        source: str = typer.Argument(..., help=source_help),
        target: str = typer.Argument(..., help=target_help),
        module: Optional[str] = ModuleOption,
        module_args: Optional[str] = ModuleArgsOption,
        input_shape: Optional[str] = InputShapeOption,
        input_dtype: Optional[str] = InputDtypeOption,
        force: bool = ForceOption,
        check: bool = CheckOption,
        as_json: bool = JsonOption,
        keep_input_layout: bool = KeepLayoutOption,
        external_data: bool = ExternalDataOption,
    ):
        run_conversion(source, target, source_format, target_format, module, module_args, input_shape, force,
                       check, as_json, keep_input_layout, input_dtype, external_data)

    names = {"keras": "Keras", "torch": "PyTorch", "onnx": "ONNX"}
    command.__doc__ = (f"Convert a {names[source_format]} model to {names[target_format]}." if source_format
                       else "Convert between any two formats, inferred from content and extension.")
    return command


for _source, _target in DIRECTIONS:
    app.command(f"{_source}-to-{_target}")(conversion_command(_source, _target))
app.command("convert")(conversion_command(None, None))


@app.command()
def inspect(
    file: str = typer.Argument(..., help="A Keras, torch, ONNX or .wconv file."),
    module: Optional[str] = ModuleOption,
    module_args: Optional[str] = ModuleArgsOption,
    input_shape: Optional[str] = InputShapeOption,
    input_dtype: Optional[str] = InputDtypeOption,
    as_json: bool = JsonOption,
):
    """List layers, parameter names and shapes, in the file's convention and canonically."""
    from .inspect import inspect_file
    from .report import print_inspection

    with errors_to_exit_codes():
        with shown(STATE["progress"]):
            description = inspect_file(file, module=module, module_args=module_args,
                                       input_shape=parse_shape(input_shape), input_dtype=input_dtype)
        print_inspection(description, as_json)
        if "unsupported" in description:
            fail(cut(description['unsupported']), 3)


@app.command()
def explain(op: Optional[str] = typer.Argument(None, help="An op such as dense; omit to list them."),
            markdown: bool = typer.Option(False, "--markdown", help="Print every op as the README's table.")):
    """One op's conventions across Keras, PyTorch and ONNX, from wconv's op table."""
    from .explain import explain as explain_op
    from .explain import markdown_table
    from .ops import OPS

    with errors_to_exit_codes():
        if markdown:
            typer.echo(markdown_table(), nl=False)
        else:
            typer.echo(explain_op(op) if op else "ops: " + ", ".join(OPS))


@app.command()
def validate(
    source: str = typer.Argument(..., help="The original model."),
    target: str = typer.Argument(..., help="The ported model."),
    source_module: Optional[str] = typer.Option(None, "--source-module", help="nn.Module for a torch SOURCE."),
    target_module: Optional[str] = typer.Option(None, "--target-module",
                                                help="nn.Module for a torch TARGET (default: wconv's generated .py)."),
    module_args: Optional[str] = ModuleArgsOption,
    input_shape: Optional[str] = InputShapeOption,
    input_dtype: Optional[str] = InputDtypeOption,
    inputs: Optional[str] = typer.Option(None, "--inputs", help="Inputs as .npy or .npz instead of random ones, "
                                         "as the source model takes them (a Keras model's images channels last)."),
    batch: int = typer.Option(4, "--batch", help="Batch size of the random inputs."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random inputs."),
    atol: Optional[float] = typer.Option(None, "--atol", help="Default by dtype: 1e-5 (float32), 1e-3 (float16)."),
    rtol: Optional[float] = typer.Option(None, "--rtol", help="Default by dtype: 1e-4 (float32), 1e-2 (float16)."),
    as_json: bool = JsonOption,
    junit: Optional[str] = typer.Option(None, "--junit", help="Also write a JUnit XML report (one case per layer)."),
    html: Optional[str] = typer.Option(None, "--html", help="Also write a self-contained HTML report with a plot."),
    target_layout: Optional[str] = typer.Option(None, "--target-layout",
                                                help="channels_last or channels_first: the layout a torch or ONNX "
                                                     "TARGET takes, when not recorded by wconv."),
    source_layout: Optional[str] = typer.Option(None, "--source-layout", help="The same for the SOURCE."),
):
    """Run both models on the same inputs, layer by layer; exit 0 if they match, 1 if not."""
    from .report import print_validation
    from .validation import load_inputs, validate as run

    with errors_to_exit_codes():
        with shown(STATE["progress"]):
            report = run(source, target, source_module=source_module, target_module=target_module,
                         source_module_args=module_args, input_shape=parse_shape(input_shape),
                         input_dtype=input_dtype, inputs=load_inputs(inputs) if inputs else None, batch=batch, seed=seed, atol=atol,
                         rtol=rtol, source_layout=_layout(source_layout), target_layout=_layout(target_layout))
        print_validation(report, as_json)
        if junit:
            from .junit import write_junit

            write_junit(report, junit)
        if html:
            from .html_report import write_html

            write_html(report, html)
        if not report.ok:
            raise typer.Exit(1)


@app.command("port")
def port_command(
    source: str = typer.Argument(..., help="The model whose weights to take (any format wconv reads)."),
    out: str = typer.Argument(..., help="Where to write your filled model: .pt/.safetensors (a torch module's "
                                        "state_dict) or .keras/.h5 (a Keras model)."),
    into: str = typer.Option(..., "--into", help="Your model: file.py:Class or pkg.mod:Class (an nn.Module), a "
                                                 "function building a keras.Model, or your .keras/.h5 file."),
    module_args: Optional[str] = typer.Option(None, "--module-args", help="JSON keyword arguments for --into."),
    overrides: Optional[str] = typer.Option(None, "--map", help="A JSON file {source layer: target layer} settling "
                                                                "pairs the alignment cannot."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the mapping table; write nothing."),
    no_check: bool = typer.Option(False, "--no-check", help="Do not run both models after writing."),
    source_module: Optional[str] = typer.Option(None, "--source-module", help="nn.Module of a torch SOURCE."),
    source_module_args: Optional[str] = typer.Option(None, "--source-module-args",
                                                     help="JSON keyword arguments for --source-module."),
    input_shape: Optional[str] = InputShapeOption,
    input_dtype: Optional[str] = InputDtypeOption,
    force: bool = ForceOption,
    as_json: bool = JsonOption,
):
    """Fill your own model with another model's weights (every convention applied), then prove it predicts the
    same."""
    from .porting import AlignmentFailed, PortBlocked, check_port_output, load_overrides, port, write_port
    from .report import print_blocked, print_port, print_unaligned, print_validation

    with errors_to_exit_codes():
        check_port_output(source, out, force, dry_run)
        try:
            with shown(STATE["progress"]):
                result = port(source, into, module=source_module, module_args=source_module_args,
                              into_args=module_args, overrides=load_overrides(overrides),
                              input_shape=parse_shape(input_shape), input_dtype=input_dtype)
        except AlignmentFailed as error:
            print_unaligned(error.alignment, as_json)
            raise
        except PortBlocked as error:
            print_blocked(error.blocked, as_json)
            raise
        summary = {"source": source, "into": into, "output": None if dry_run else out, "pairs": len(result.mapping),
                   "tensors": len(result.weights)}
        traced = parse_shape(input_shape) or result.traced_shape
        if result.traced_shape and not input_shape:
            summary["traced_input_shape"] = list(result.traced_shape)
            if not as_json:
                typer.echo(f"wconv: note: {source} leaves an input size free; traced and checked with input shape "
                           f"{','.join(map(str, result.traced_shape))} (no weight depends on it; --input-shape "
                           "chooses another)", err=True)
        if dry_run or as_json and no_check:
            print_port(result.mapping, as_json, summary)
            return
        write_port(result, out, force, sources=[source])
        if no_check:
            typer.echo(f"wrote {out}: {len(result.weights)} tensors for {len(result.mapping)} layers (not checked)")
            return
        from .formats import for_output
        from .validation import validate as run

        torch_port = for_output(out) == "torch"  # a Keras port is a plain model: nothing to import to run it
        with shown(STATE["progress"]):
            report = run(source, out, source_module=source_module, source_module_args=source_module_args,
                         target_module=into if torch_port else None, target_module_args=module_args, input_shape=traced,
                         input_dtype=input_dtype, pairs=[(r.source, r.target) for r in result.mapping if r.comparable])
        if as_json:
            from .porting import rows_as_dicts

            typer.echo(json.dumps({**summary, "mapping": rows_as_dicts(result.mapping), "check": report.to_dict()},
                                  indent=2, default=str))
        else:
            typer.echo(f"wrote {out}: {len(result.weights)} tensors for {len(result.mapping)} layers")
            print_validation(report, False)
        if not report.ok:
            raise typer.Exit(1)


@app.command("exit-codes")
def exit_codes():
    """The exit codes wconv uses."""
    for code, meaning in EXIT_CODES.items():
        typer.echo(f"{code:>3}  {meaning}")


def _layout(value: Optional[str]) -> Optional[str]:
    if value not in (None, "channels_last", "channels_first"):
        fail(f"layout '{value}': use channels_last or channels_first", 2)
    return value


def run():
    app()
