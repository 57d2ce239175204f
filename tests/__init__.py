"""Tests of CHeKT for Home Assistant."""
