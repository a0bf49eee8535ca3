"""payment_versions by patient: one patient's payments as of an instant without a scan

GET /patients/<id>?as_of=, GET /payments?external_id=<id>&as_of= and the
console's patient page read the versions of one patient's payments; without
this index each read scanned every kept payment version.

Revision ID: f6a8b0c2d4e6
Revises: e5f7a9b1c3d5
Create Date: 2026-11-30 05:20:00
"""

from alembic import op

revision = "f6a8b0c2d4e6"
down_revision = "e5f7a9b1c3d5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_payment_versions_patient_id_valid_from", "payment_versions",
                    ["patient_id", "valid_from"])


def downgrade() -> None:
    op.drop_index("ix_payment_versions_patient_id_valid_from", table_name="payment_versions")
