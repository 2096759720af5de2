# Snakemake internals: there is no public API for these facts. Kept apart so that a
# Snakemake upgrade has one file to check; each use falls back to Snakemake's own way
# (only slower) where the internals moved. Measured by bench/slurm_dry_run.py.
import inspect

try:
    from snakemake.common import FUNC_OVERWRITE_PARAMS_ATTR
except ImportError:  # another Snakemake: it inspects the signature itself
    FUNC_OVERWRITE_PARAMS_ATTR = None


def known_signature(func):
    """Tell Snakemake a function's parameters once.

    It otherwise runs inspect.signature on every input, params and resource
    function for every job it plans (25 us each; 20,000 jobs at a million images).
    """
    if FUNC_OVERWRITE_PARAMS_ATTR:
        setattr(func, FUNC_OVERWRITE_PARAMS_ATTR, inspect.signature(func).parameters)
    return func


def known_resource_signatures():
    """The same for the functions behind every job's resources.

    Snakemake evaluates each resource through a bound ``Resource.evaluate`` and,
    for default resources such as ``tmpdir``, a closure: two inspect.signature
    calls per resource per job, 3 s of a 20,000-job dry run.
    """
    try:
        from snakemake.resources import Resource

        known_signature(Resource.evaluate)  # a bound method finds it on its function
        defaults = workflow.resource_settings._parsed_default_resources.values()
        for resource in defaults:
            if resource.is_evaluable():
                known_signature(resource._evaluator)
    except (ImportError, AttributeError):  # another Snakemake: nothing is lost but time
        pass


known_resource_signatures()
