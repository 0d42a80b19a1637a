// OFREP for the app's feature flags: OpenFeature SDKs point their OFREP provider at
// https://<ref>.supabase.co/functions/v1/flags and send the user's JWT. The database decides
// (public.my_feature_flags(), called as that user); this only speaks the protocol.
import { ofrepHandler } from "../_shared/supagate_ofrep.ts";

Deno.serve(ofrepHandler(async (req: Request) => {
  const url = Deno.env.get("SUPABASE_URL");
  const anon = Deno.env.get("SUPABASE_ANON_KEY");
  const response = await fetch(`${url}/rest/v1/rpc/my_feature_flags`, {
    method: "POST",
    headers: { "content-type": "application/json", apikey: anon ?? "",
               authorization: req.headers.get("authorization") ?? `Bearer ${anon}` },
    body: "{}",
  });
  if (!response.ok) throw new Error(`the Data API answered ${response.status}`);
  return await response.json();
}));
