/** Categorical colours for the dark console (Okabe–Ito first, for colour-blind readers). */
export const PALETTE = ['#56B4E9', '#E69F00', '#009E73', '#F0E442', '#CC79A7', '#0072B2', '#D55E00', '#9ad0f5', '#b0b6c3'];
