-- How Panorama connects to a source it pulls from (MQTT broker, topics,
-- mapping): a JSON document, NULL for sources that push.
ALTER TABLE sources ADD COLUMN connector TEXT;
