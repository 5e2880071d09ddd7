/** The golden metric values of tests/eval/oracles_metrics.json (golden values computed independently of this code, kept in the repository). */
import type { HostMatrix } from "../../lib/util/matrix.ts";

/** One oracle case: embeddings, labels, a clustering and what PML / scikit-learn report for them. */
export interface OracleCase {
  name: string;
  embeddings: HostMatrix;
  labels: Int32Array;
  clusters: Int32Array;
  expected: {
    mean_average_precision_at_r: number;
    precision_at_1: number;
    r_precision: number;
    recall_at_1: number;
    recall_at_2: number;
    recall_at_4: number;
    recall_at_8: number;
    nmi_of_clusters: number;
    ami_of_clusters: number;
  };
}

/** The oracle cases, read from the copy inside the repository (nothing outside the repository is read). */
export function oracleCases(): OracleCase[] {
  const raw = JSON.parse(Deno.readTextFileSync(new URL("./oracles_metrics.json", import.meta.url)));
  return raw.cases.map((
    c: { name: string; embeddings: number[][]; labels: number[]; clusters: number[] },
  ) => ({
    ...c,
    embeddings: {
      rows: c.embeddings.length,
      cols: c.embeddings[0].length,
      data: Float32Array.from(c.embeddings.flat()),
    },
    labels: Int32Array.from(c.labels),
    clusters: Int32Array.from(c.clusters),
  }));
}
