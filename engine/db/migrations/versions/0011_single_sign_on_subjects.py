"""single sign-on: the person's subject at the City's OpenID provider

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_account') as batch:
        batch.add_column(sa.Column('sso_subject', sa.String(length=600), nullable=True))
        batch.create_unique_constraint('uq_user_account_sso_subject', ['sso_subject'])


def downgrade() -> None:
    with op.batch_alter_table('user_account') as batch:
        batch.drop_constraint('uq_user_account_sso_subject', type_='unique')
        batch.drop_column('sso_subject')
