// Types the HTML renderer needs (the report plus what the server adds at view time).
export type { EvalReport, SampleRow, SummaryRow } from './report-types.js';

export interface SignoffView {
  user: string;
  decision: 'approve' | 'reject';
  comment: string;
  createdAt: number;
}
