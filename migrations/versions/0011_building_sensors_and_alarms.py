"""building sensors and alarms

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21 21:04:20.931618
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import biblioverse.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "linkage_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=True),
        sa.Column("metric", sa.String(length=16), nullable=True),
        sa.Column("location_id", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column(
            "actions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "trigger IN ('raised', 'resolved')", name=op.f("ck_linkage_rules_trigger")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_linkage_rules_location_id_locations")
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"], ["org_units.id"], name=op.f("fk_linkage_rules_org_unit_id_org_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkage_rules")),
    )
    with op.batch_alter_table("linkage_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_linkage_rules_org_unit_id"), ["org_unit_id"], unique=False
        )

    op.create_table(
        "sensor_placements",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device_keys.id"],
            name=op.f("fk_sensor_placements_device_id_device_keys"),
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_sensor_placements_location_id_locations"),
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_sensor_placements")),
    )
    with op.batch_alter_table("sensor_placements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sensor_placements_location_id"), ["location_id"], unique=False
        )

    op.create_table(
        "sensor_readings",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["device_keys.id"], name=op.f("fk_sensor_readings_device_id_device_keys")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_sensor_readings_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("device_id", "metric", "channel", name=op.f("pk_sensor_readings")),
    )
    with op.batch_alter_table("sensor_readings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sensor_readings_location_id"), ["location_id"], unique=False
        )

    op.create_table(
        "zone_thresholds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("updated_at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_zone_thresholds_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zone_thresholds")),
        sa.UniqueConstraint(
            "location_id", "metric", name=op.f("uq_zone_thresholds_location_id_metric")
        ),
    )
    with op.batch_alter_table("zone_thresholds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_zone_thresholds_location_id"), ["location_id"], unique=False
        )

    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("worst_value", sa.Float(), nullable=True),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("open_key", sa.String(length=80), nullable=True),
        sa.Column("raised_at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", biblioverse.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("resolved_at", biblioverse.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.CheckConstraint("kind IN ('threshold', 'offline', 'gate')", name=op.f("ck_alarms_kind")),
        sa.CheckConstraint(
            "state IN ('raised', 'acknowledged', 'resolved')", name=op.f("ck_alarms_state")
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"],
            ["staff_users.id"],
            name=op.f("fk_alarms_acknowledged_by_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["device_keys.id"], name=op.f("fk_alarms_device_id_device_keys")
        ),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_alarms_item_id_items")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_alarms_location_id_locations")
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"], ["org_units.id"], name=op.f("fk_alarms_org_unit_id_org_units")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["staff_users.id"], name=op.f("fk_alarms_resolved_by_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
        sa.UniqueConstraint("open_key", name=op.f("uq_alarms_open_key")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarms_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_location_id"), ["location_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_org_unit_id"), ["org_unit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_raised_at"), ["raised_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_state"), ["state"], unique=False)

    op.create_table(
        "alarm_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("type", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("at", biblioverse.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'done', 'failed')", name=op.f("ck_alarm_actions_status")
        ),
        sa.ForeignKeyConstraint(
            ["alarm_id"], ["alarms.id"], name=op.f("fk_alarm_actions_alarm_id_alarms")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["linkage_rules.id"], name=op.f("fk_alarm_actions_rule_id_linkage_rules")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_actions")),
        sa.UniqueConstraint(
            "alarm_id",
            "rule_id",
            "position",
            "trigger",
            name=op.f("uq_alarm_actions_alarm_id_rule_id_position_trigger"),
        ),
    )
    with op.batch_alter_table("alarm_actions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarm_actions_alarm_id"), ["alarm_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarm_actions_rule_id"), ["rule_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("alarm_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alarm_actions_rule_id"))
        batch_op.drop_index(batch_op.f("ix_alarm_actions_alarm_id"))

    op.drop_table("alarm_actions")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alarms_state"))
        batch_op.drop_index(batch_op.f("ix_alarms_raised_at"))
        batch_op.drop_index(batch_op.f("ix_alarms_org_unit_id"))
        batch_op.drop_index(batch_op.f("ix_alarms_location_id"))
        batch_op.drop_index(batch_op.f("ix_alarms_device_id"))

    op.drop_table("alarms")
    with op.batch_alter_table("zone_thresholds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_zone_thresholds_location_id"))

    op.drop_table("zone_thresholds")
    with op.batch_alter_table("sensor_readings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sensor_readings_location_id"))

    op.drop_table("sensor_readings")
    with op.batch_alter_table("sensor_placements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sensor_placements_location_id"))

    op.drop_table("sensor_placements")
    with op.batch_alter_table("linkage_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_linkage_rules_org_unit_id"))

    op.drop_table("linkage_rules")
