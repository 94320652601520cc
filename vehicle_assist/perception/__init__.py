"""The road-watching lane: frame sources, YOLO detector, tracker, hazard assessment."""
