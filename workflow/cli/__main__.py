"""``python -m workflow.cli``: the ``complaintflow`` command."""

from workflow.cli import main

main(prog_name="complaintflow")
