"""Write a rule's ``params.value`` as JSON: the resolved config reaches steps as a file.

Run by Snakemake's ``script:`` directive, so no value passes through a shell
string: braces, quotes and HTML in any config value survive unchanged.
"""

from boneage.atomic import write_json

write_json(snakemake.output[0], snakemake.params.value)  # noqa: F821 - set by Snakemake
with open(snakemake.log[0], "w") as log:  # noqa: F821
    print(f"wrote {snakemake.output[0]}", file=log)  # noqa: F821
