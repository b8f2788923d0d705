from django.core.management.base import BaseCommand, CommandError

from apps.audit.services import audit_verify


class Command(BaseCommand):
    help = "Recompute the audit hash chains and report any edited, inserted or deleted entry."

    def add_arguments(self, parser):
        parser.add_argument("--org", dest="org_id", default=None, help="verify one organisation's chain only")

    def handle(self, *args, org_id=None, **options):
        report = audit_verify(org_id=org_id)
        for problem in report.problems:
            where = f"entry {problem.seq}" if problem.seq is not None else "chain"
            self.stderr.write(f"chain {problem.org_id or '(platform)'}: {where}: {problem.problem}")
        summary = f"{report.chains} chain(s), {report.entries} entries checked"
        if not report.ok:
            raise CommandError(f"audit log tampered: {len(report.problems)} problem(s); {summary}")
        self.stdout.write(f"audit log intact: {summary}")
