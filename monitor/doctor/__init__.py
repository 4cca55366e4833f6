"""`dq-monitor doctor`: what a deployment can read, as items; nothing here writes."""

from monitor.doctor.diagnosis import diagnose
from monitor.doctor.items import DoctorItem, ItemStatus, healthy
from monitor.doctor.routes import route_items

__all__ = ["DoctorItem", "ItemStatus", "diagnose", "healthy", "route_items"]
