// MapLibre, loaded with the map view only. Its worker is emitted as a file of
// our own build (no CDN) and registered here.

import 'maplibre-gl/dist/maplibre-gl.css';
import * as maplibregl from 'maplibre-gl';
import workerUrl from 'maplibre-gl/dist/maplibre-gl-worker.mjs?url';

maplibregl.setWorkerUrl(new URL(workerUrl, location.href).href);

let pmtilesReady: Promise<void> | null = null;

/** Registers the pmtiles:// protocol on first use (only when an operator configured a PMTiles base map). */
export function enablePmtiles(): Promise<void> {
  pmtilesReady ??= import('pmtiles').then(({ Protocol }) => {
    const protocol = new Protocol();
    maplibregl.addProtocol('pmtiles', protocol.tile);
  });
  return pmtilesReady;
}

/** Whether a PMTiles archive holds vector tiles, and its layer names. */
export async function pmtilesInfo(url: string): Promise<{ vector: boolean; layers: string[]; minzoom: number; maxzoom: number }> {
  const { PMTiles, TileType } = await import('pmtiles');
  const p = new PMTiles(url.replace(/^pmtiles:\/\//, ''));
  const h = await p.getHeader();
  let layers: string[] = [];
  if (h.tileType === TileType.Mvt) {
    const meta = (await p.getMetadata()) as { vector_layers?: { id: string }[] };
    layers = (meta?.vector_layers ?? []).map((l) => l.id);
  }
  return { vector: h.tileType === TileType.Mvt, layers, minzoom: h.minZoom, maxzoom: h.maxZoom };
}

export { maplibregl };
