// Shapes of the public API (docs/API.md). Only what the page reads.

export interface Reason {
  feature: string;
  text: string;
  impact: number;
}

export interface Score {
  tenant_id: string;
  lead_id: string;
  probability: number;
  score: number;
  band: Band;
  confidence: number;
  events_count: number;
  reasons: Reason[];
  model: string;
  fallback_reason?: string;
  scored_at: string;
  latency_us: number;
}

export type Band = 'hot' | 'warm' | 'cold';

export interface ScoreUpdate extends Score {
  type: 'score_update';
  seq: number;
}

export interface Performance {
  tenant_id: string;
  scoring_latency: {
    p50_ms: number;
    p95_ms: number;
    p99_ms: number;
    samples: number;
  };
  events_per_second: { last_10s: number; last_60s: number };
  websocket_connections: { tenant: number; total: number };
  // Lookups of both kinds together, then each: feature snapshots (a lead's
  // state at hand, here or another instance's) and warm scores.
  cache: CacheLookups & {
    feature_snapshots: CacheLookups & { from_other_instances: number; shared: boolean; ttl_s: number };
    warm_scores: CacheLookups & { entries: number; evictions: number; ttl_s: number };
    // The same lookups, this tenant's only (the figures above are the server's).
    tenant?: CacheLookups & { feature_snapshots: CacheLookups; warm_scores: CacheLookups };
  };
  model_version: string;
  fallback_scores: { tenant: number; total: number };
}

export interface CacheLookups {
  hits: number;
  misses: number;
  hit_rate: number;
}

export interface ComponentHealth {
  status: string;
  detail?: string;
  version?: string;
}

export interface Readiness {
  status: string;
  [component: string]: ComponentHealth | string;
}
