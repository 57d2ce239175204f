"""CHeKT for Home Assistant: alarms, arming changes and troubles, with snapshots, to the CHeKT cloud."""
