// Reference data of the operations views: agencies and SOP templates.

import { get } from './api';
import type { Agency, SopTemplate } from './ops';

let agencies: Promise<Agency[]> | null = null;

/** Agencies, fetched once per page load. */
export function agenciesList(): Promise<Agency[]> {
  agencies ??= get<Agency[]>('/agencies').catch((e) => {
    agencies = null;
    throw e;
  });
  return agencies;
}

/** SOP templates (an admin may change them, so not cached). */
export const sopsList = () => get<SopTemplate[]>('/sops');
