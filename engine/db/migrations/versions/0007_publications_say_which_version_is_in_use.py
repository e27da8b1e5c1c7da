"""the publications say which version is in use: process_model loses published, published_at, published_by_id

The version in use is the one named by its procedure's latest publication; when and by whom a version was last
published is read from its publications. Before the columns go, every publication they record is made a row of
process_publication: versions published before 0006 (which kept only the one then in use) keep their date.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

model = sa.table(
    'process_model',
    sa.column('id', sa.Integer),
    sa.column('key', sa.String),
    sa.column('created_at', sa.DateTime),
    sa.column('published', sa.Boolean),
    sa.column('published_at', sa.DateTime),
    sa.column('published_by_id', sa.Integer),
)
publication = sa.table(
    'process_publication',
    sa.column('id', sa.Integer),
    sa.column('key', sa.String),
    sa.column('model_id', sa.Integer),
    sa.column('published_by_id', sa.Integer),
    sa.column('published_at', sa.DateTime),
)


def _unrecorded(models, rows) -> list[dict]:
    """A publication for each version whose last publication (or, if in use, whose being in use) has no row."""
    recorded = {(row.model_id, row.published_at) for row in rows}
    has_any = {row.model_id for row in rows}
    missing = []
    for m in models:
        if m.published_at is not None and (m.id, m.published_at) not in recorded:
            missing.append(dict(key=m.key, model_id=m.id, published_by_id=m.published_by_id, published_at=m.published_at))
        elif m.published_at is None and m.published and m.id not in has_any:
            missing.append(dict(key=m.key, model_id=m.id, published_by_id=None, published_at=m.created_at))
    return missing


def _in_order(existing: list[dict], missing: list[dict], in_use: int | None) -> list[dict]:
    """One procedure's publications, oldest first: the recorded ones keep their order, the others go in by date;
    the version in use is named by the last one."""
    merged, missing = [], sorted(missing, key=lambda row: row['published_at'])
    for row in existing:
        while missing and missing[0]['published_at'] <= row['published_at']:
            merged.append(missing.pop(0))
        merged.append(row)
    merged.extend(missing)
    if in_use is not None and (not merged or merged[-1]['model_id'] != in_use):
        last = max((row for row in merged if row['model_id'] == in_use), key=lambda row: row['published_at'])
        merged.append(dict(last))
    return merged


def _record_every_publication() -> None:
    """Make a publication row of every publication the process_model columns record and process_publication lacks.

    A procedure that gains rows (or whose latest row does not name its version in use) has its publications
    written again in order, with new ids, so that its latest row is its latest publication and names the version
    the column said is in use.
    """
    bind = op.get_bind()
    models = bind.execute(sa.select(model).order_by(model.c.id)).all()
    rows = bind.execute(sa.select(publication).order_by(publication.c.id)).all()
    missing = _unrecorded(models, rows)
    in_use = {m.key: m.id for m in models if m.published}
    latest = {row.key: row.model_id for row in rows}
    stale = {key for key, model_id in in_use.items() if latest.get(key) != model_id}
    for key in sorted({row['key'] for row in missing} | stale):
        existing = [
            dict(key=row.key, model_id=row.model_id, published_by_id=row.published_by_id, published_at=row.published_at)
            for row in rows
            if row.key == key
        ]
        ordered = _in_order(existing, [row for row in missing if row['key'] == key], in_use.get(key))
        bind.execute(publication.delete().where(publication.c.key == key))
        bind.execute(publication.insert(), ordered)


def upgrade() -> None:
    _record_every_publication()
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.drop_constraint('fk_process_model_published_by', type_='foreignkey')
        batch_op.drop_column('published_by_id')
        batch_op.drop_column('published_at')
        batch_op.drop_column('published')


def downgrade() -> None:
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('published_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('published_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_process_model_published_by', 'user_account', ['published_by_id'], ['id'])
    own = sa.select(publication).where(publication.c.model_id == model.c.id).order_by(publication.c.id.desc()).limit(1)
    latest_of_key = (
        sa.select(publication.c.model_id)
        .where(publication.c.key == model.c.key)
        .order_by(publication.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    op.execute(
        model.update().values(
            published=sa.func.coalesce(latest_of_key == model.c.id, sa.false()),
            published_at=own.with_only_columns(publication.c.published_at).scalar_subquery(),
            published_by_id=own.with_only_columns(publication.c.published_by_id).scalar_subquery(),
        )
    )
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.alter_column('published', existing_type=sa.Boolean(), server_default=None)
