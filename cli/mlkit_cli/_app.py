"""Typer classes every mlkit command goes through: common flags (-q, -v, --debug) on every verb,
and exceptions turned into exit codes by :mod:`mlkit_cli._errors`."""

import contextvars
import functools
import inspect
import typing

import typer
from typer.core import TyperCommand, TyperGroup

from . import _errors
from ._options import Debug, Quiet, Verbose

_COMMON = {"quiet": (Quiet, False), "verbose": (Verbose, 0), "debug": (Debug, False)}
CONTEXT = {"help_option_names": ["-h", "--help"]}
_CTX_PARAM = "mlkit_ctx"
_META: contextvars.ContextVar[dict | None] = contextvars.ContextVar("mlkit_meta", default=None)


class MlkitCommand(TyperCommand):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except BaseException as exc:  # noqa: BLE001 - mapped to exit codes in one place
            raise typer.Exit(_errors.report(exc, ctx.command_path, ctx.meta)) from None


class MlkitTyper(typer.Typer):
    """A Typer whose verbs all get -q/--quiet, -v/--verbose and --debug (values in ctx.meta)
    and the error mapping."""

    def __init__(self, **kw):
        kw.setdefault("cls", TyperGroup)
        kw.setdefault("no_args_is_help", True)
        kw.setdefault("context_settings", CONTEXT)
        kw.setdefault("rich_markup_mode", None)
        kw.setdefault("add_completion", False)
        super().__init__(**kw)

    def command(self, *args, **kw):
        kw.setdefault("cls", MlkitCommand)
        register = super().command(*args, **kw)

        def deco(fn):
            register(_with_common(fn))
            return fn

        return deco


def _with_common(fn):
    hints = typing.get_type_hints(fn, include_extras=True)
    sig = inspect.signature(fn)
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()]
    for name, (ann, default) in _COMMON.items():
        if name not in sig.parameters:
            params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                            annotation=ann))

    params.append(inspect.Parameter(_CTX_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))

    @functools.wraps(fn)
    def wrapper(**kwargs):
        ctx = kwargs.pop(_CTX_PARAM)
        for name in _COMMON:
            if name in kwargs and name not in sig.parameters:
                value = kwargs.pop(name)
                ctx.meta[name] = value or ctx.meta.get(name, value)  # root flags count too
        token = _META.set(ctx.meta)
        try:
            return fn(**kwargs)
        finally:
            _META.reset(token)

    wrapper.__signature__ = sig.replace(parameters=params)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__  # typer must see the extended signature
    return wrapper


def meta() -> dict:
    """The run's shared flags (quiet, verbose, debug), for code below a verb body."""
    return _META.get() or {}
