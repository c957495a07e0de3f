/**
 * Test fixtures on disk.
 * @module
 */
import { join } from "node:path";

/** A temporary tree: a fake HOME holding `~/.ssh/id_rsa`, and an ordinary `outside/public.txt`. */
export interface FakeHome {
  /** The real path of the temporary directory holding both (remove it when done). */
  tmp: string;
  home: string;
  outside: string;
}

/** Create a {@link FakeHome} under a fresh temporary directory named with `prefix`. */
export async function fakeHome(prefix: string): Promise<FakeHome> {
  const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix }));
  const home = join(tmp, "home");
  await Deno.mkdir(join(home, ".ssh"), { recursive: true });
  await Deno.writeTextFile(join(home, ".ssh", "id_rsa"), "FAKE SECRET KEY");
  const outside = join(tmp, "outside");
  await Deno.mkdir(outside);
  await Deno.writeTextFile(join(outside, "public.txt"), "public");
  return { tmp, home, outside };
}
