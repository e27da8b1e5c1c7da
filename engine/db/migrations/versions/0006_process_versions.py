"""procedure versions edited by administrators: numbered versions, who made and published them, drafts

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(length=20), nullable=False, server_default='shipped'))
        batch_op.add_column(sa.Column('created_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('published_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_process_model_created_by', 'user_account', ['created_by_id'], ['id'])
        batch_op.create_foreign_key('fk_process_model_published_by', 'user_account', ['published_by_id'], ['id'])
    # Number the versions stored so far in the order they were stored, 1, 2, ... per procedure.
    op.execute(
        "UPDATE process_model SET number = (SELECT COUNT(*) FROM process_model AS earlier "
        "WHERE earlier.key = process_model.key AND earlier.id <= process_model.id)")
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.alter_column('number', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint('uq_process_model_key_number', ['key', 'number'])
    op.create_table('process_draft',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('bpmn_xml', sa.Text(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('based_on_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['based_on_id'], ['process_model.id'], ),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('process_publication',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['process_model.id'], ),
    sa.ForeignKeyConstraint(['published_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_publication_key', 'process_publication', ['key', 'id'], unique=False)
    # The versions published so far were published by civicflow itself (shipped in workflows/).
    op.execute(
        "INSERT INTO process_publication (key, model_id, published_by_id, published_at) "
        "SELECT key, id, NULL, COALESCE(published_at, created_at) FROM process_model WHERE published")


def downgrade() -> None:
    op.drop_index('ix_publication_key', table_name='process_publication')
    op.drop_table('process_publication')
    op.drop_table('process_draft')
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.drop_constraint('uq_process_model_key_number', type_='unique')
        batch_op.drop_constraint('fk_process_model_published_by', type_='foreignkey')
        batch_op.drop_constraint('fk_process_model_created_by', type_='foreignkey')
        batch_op.drop_column('published_by_id')
        batch_op.drop_column('created_by_id')
        batch_op.drop_column('source')
        batch_op.drop_column('number')
