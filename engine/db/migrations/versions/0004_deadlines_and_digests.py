"""letters with a deadline (a dispute's acknowledgement) and the daily digests already written

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

UNDELIVERED_BY = "deliver_by IS NOT NULL AND escalated_at IS NULL AND status <> 'sent'"


def upgrade() -> None:
    with op.batch_alter_table('outbox_mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deliver_by', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_outbox_deliver_by', ['deliver_by'], unique=False,
                              postgresql_where=sa.text(UNDELIVERED_BY), sqlite_where=sa.text(UNDELIVERED_BY))
    op.create_table('digest',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=False),
    sa.Column('open_tasks', sa.Integer(), nullable=False),
    sa.Column('overdue_tasks', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('user_id', 'day')
    )


def downgrade() -> None:
    op.drop_table('digest')
    with op.batch_alter_table('outbox_mail', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_deliver_by', postgresql_where=sa.text(UNDELIVERED_BY),
                            sqlite_where=sa.text(UNDELIVERED_BY))
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('deliver_by')
