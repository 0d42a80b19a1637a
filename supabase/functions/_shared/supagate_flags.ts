// Feature-flag bucketing v1 for edge functions: the same answer as ops.flag_bucket in SQL
// and supagate/ops/flags.py in Python (golden vectors: tests/ops/flag_vectors.json).
// bucket = first 4 bytes of SHA-256(salt + ":" + subject), unsigned big-endian, mod 10000.

export const FULL = 10000;

export async function bucket(salt: string, subject: string): Promise<number> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${salt}:${subject}`));
  return new DataView(digest).getUint32(0, false) % FULL;
}

// Signed-out callers (no subject) are off at a partial step: there is no shared anonymous bucket.
export async function enabled(salt: string, subject: string | null | undefined, basisPoints: number): Promise<boolean> {
  if (basisPoints >= FULL) return true;
  if (basisPoints <= 0 || !subject) return false;
  return (await bucket(salt, subject)) < basisPoints;
}
