import json

from django.core.management.base import BaseCommand

from apps.events import contracts


class Command(BaseCommand):
    help = (
        "Compare the API's OpenAPI document and the event catalog with the committed snapshots in contracts/: "
        "exit 1 on a breaking change (or an out-of-date snapshot), 0 when they match. See docs/compatibility.md."
    )
    requires_system_checks = []  # the gate needs no database and reports only on contracts

    def add_arguments(self, parser):
        parser.add_argument("--update", action="store_true", help="Rewrite the snapshots (review the diff in the PR).")
        parser.add_argument(
            "--allow-breaking", action="store_true", help="With --update: record breaking changes too (approved ones)."
        )
        parser.add_argument("--json", action="store_true", help="Print a machine-readable report.")
        parser.add_argument("--snapshot-dir", default=None, help="Where the snapshots live (default: contracts/).")
        parser.add_argument("--catalog-dir", default=None, help="The event catalog (default: apps/events/catalog/).")

    def handle(self, *args, **options):
        report = contracts.check(options["snapshot_dir"], options["catalog_dir"])
        written, refused = [], ""
        if options["update"]:
            if report.breaking and not options["allow_breaking"]:
                refused = (
                    f"Refusing to update the snapshots: {len(report.breaking)} breaking change(s). "
                    "If they are intended and approved, rerun with --update --allow-breaking."
                )
            else:
                try:
                    written = contracts.write_snapshots(report)
                except contracts.ContractsError as exc:
                    refused = f"Refusing to update the snapshots: {exc}"
        if options["json"]:
            out = report.as_dict()
            if options["update"]:
                out |= {"updated": not refused, "written": written, "refused": refused}
            self.stdout.write(json.dumps(out, indent=2, ensure_ascii=False))
        elif options["update"] and not refused:
            if report.changes:
                self.stdout.write("\n".join(c.line() for c in report.changes))
            self.stdout.write("\n".join(written))
        else:
            self.stdout.write(report.text())
            if refused:
                self.stdout.write(refused)
        if refused or (not options["update"] and report.exit_code):
            raise SystemExit(1)
