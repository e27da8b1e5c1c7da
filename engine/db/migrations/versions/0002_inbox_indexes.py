"""inbox indexes that do not grow with the number of requests; the department head foreign key on PostgreSQL

The pool of claimable tasks gets its own partial index (open and unclaimed), and the assigned-tasks index
covers its sort order and excludes unclaimed rows, so that both inbox views and the navigation count are
index searches on SQLite and PostgreSQL alike (measured by bench/inbox.py).

0001 declared department.head_id's foreign key with use_alter, which create_table leaves out; SQLite
has it from the table definition, PostgreSQL did not get it (found by comparing the schema with the models).

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

OPEN = "state = 'open'"
POOL = "state = 'open' AND assignee_id IS NULL"
ASSIGNED = "state = 'open' AND assignee_id IS NOT NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key('fk_department_head_id', 'department', 'user_account', ['head_id'], ['id'])
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index('ix_task_open_role')
        batch_op.drop_index('ix_task_open_assignee')
        batch_op.create_index('ix_task_pool', ['role', 'department_id'], unique=False,
                              postgresql_where=sa.text(POOL), sqlite_where=sa.text(POOL))
        batch_op.create_index('ix_task_assigned', ['assignee_id', 'created_at', 'id'], unique=False,
                              postgresql_where=sa.text(ASSIGNED), sqlite_where=sa.text(ASSIGNED))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint('fk_department_head_id', 'department', type_='foreignkey')
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index('ix_task_assigned')
        batch_op.drop_index('ix_task_pool')
        batch_op.create_index('ix_task_open_assignee', ['assignee_id'], unique=False,
                              postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
        batch_op.create_index('ix_task_open_role', ['role', 'department_id'], unique=False,
                              postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
