/**
 * READ (0x03) and WRITE (0x04): files, checked with `sandbox/paths.ts` and opened so that what
 * was checked is what gets read or written (`O_NOFOLLOW`, then verified through
 * `/proc/self/fd`).
 *
 * READ pages large files so that no response exceeds the 1 MiB frame limit; WRITE `write` is
 * atomic (temporary file in the same directory, fsync, rename), `create` never replaces an
 * existing file, `append` appends.
 * @module
 */
import { z } from "zod";
import { promises as fsp } from "node:fs";
import { Op } from "../kernel/protocol.ts";
import { SyscallError } from "../kernel/errors.ts";
import type { Identity } from "../kernel/identity.ts";
import type { Kernel } from "../kernel/kernel.ts";
import { absolutize, checkPathInfo, isUnder, O, splitPath, VerifiedDir } from "../sandbox/paths.ts";
import { defineSyscall } from "./registry.ts";
import { base64ToBytes, bytesToBase64, fitJsonString } from "./fit.ts";

/** Most bytes of JSON-encoded `content` one READ response carries (the frame max is 1 MiB). */
export const READ_CONTENT_BUDGET = 900 * 1024;
/** Most raw bytes one base64 READ page carries (its base64 is at most the budget). */
export const READ_BASE64_PAGE = Math.floor(READ_CONTENT_BUDGET / 4) * 3;

const encoding = z.enum(["utf8", "base64"]);

/** Response of READ. */
export interface ReadResponse {
  success: true;
  /** The page's content: text (`utf8`) or base64 of the bytes (`base64`). */
  content: string;
  /** Size of the whole file in bytes. */
  size: number;
  encoding: "utf8" | "base64";
  /** True if the file goes on after this page: read again from `offset + length`. */
  truncated: boolean;
  /** Byte offset of this page in the file. */
  offset: number;
  /** Bytes of the file in this page (a utf8 page never ends inside a character). */
  length: number;
}

/** Response of WRITE. */
export interface WriteResponse {
  success: true;
  bytes_written: number;
  /** The real path written. */
  path: string;
}

// ignoreBOM: a byte-order mark (at the start of a file or of a page) is content, never dropped.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

function fromBase64(text: string): Uint8Array {
  const bytes = base64ToBytes(text);
  if (bytes === null) {
    throw new SyscallError(
      "INVALID_MSG",
      'WRITE: field "content" is not valid base64 (encoding "base64")',
    );
  }
  return bytes;
}

/**
 * Length of the longest prefix of `bytes[0..n)` that does not end inside a UTF-8 character.
 * (Only the last up-to-3 bytes are inspected; invalid sequences are left for the decoder.)
 */
export function utf8Boundary(bytes: Uint8Array, n: number): number {
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = bytes[n - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

/** Read up to `want` bytes at `position` (fewer only at end of file). */
async function readAt(handle: fsp.FileHandle, want: number, position: number): Promise<Uint8Array> {
  const buf = new Uint8Array(want);
  let got = 0;
  while (got < want) {
    const { bytesRead } = await handle.read(buf, got, want - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Make sure the identity's workspace exists (it is created on first use). */
async function ensureWorkspace(identity: Identity, path: string): Promise<void> {
  if (!isUnder(absolutize(path, identity.workspace), identity.workspace)) return;
  try {
    await Deno.mkdir(identity.workspace, { recursive: true, mode: 0o700 });
  } catch { /* the path check reports what is wrong */ }
}

function notRegular(path: string, info: { isDirectory: boolean }): SyscallError {
  return new SyscallError(
    "INVALID_MSG",
    info.isDirectory
      ? `${path} is a directory; READ and WRITE work on files (list a directory with EXEC \`ls\`)`
      : `${path} is not a regular file (a device, FIFO or socket); READ and WRITE work on regular files`,
  );
}

/** READ: one page of a file. */
export const read = defineSyscall({
  op: Op.READ,
  name: "READ",
  summary:
    "Read a file (or a page of it: offset, length), as utf8 text or base64; pages keep responses under 1 MiB.",
  schema: z.object({
    path: z.string().max(4096),
    offset: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
    length: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
    encoding: encoding.optional(),
  }).strict(),
  right: "can_read",
  emptyResponse: { content: "", size: 0, encoding: "utf8", truncated: false, offset: 0, length: 0 },
  handler: async (input, ctx): Promise<ReadResponse> => {
    const enc = input.encoding ?? "utf8";
    await ensureWorkspace(ctx.identity, input.path);
    const checked = await checkPathInfo(ctx.identity, input.path, "read", {
      workspacesDir: ctx.kernel.layout.workspacesDir,
      stateDir: ctx.kernel.layout.root,
    });
    const pre = await Deno.lstat(checked.path).catch(() => null);
    if (pre === null) throw new SyscallError("NOT_FOUND", `${input.path}: no such file`);
    if (!pre.isFile) throw notRegular(input.path, pre);
    const { dir, name } = splitPath(checked.path);
    const parent = await VerifiedDir.open(dir, input.path);
    let handle: fsp.FileHandle;
    try {
      handle = await parent.openEntry(
        name,
        O.O_RDONLY | O.O_NONBLOCK | O.O_NOCTTY,
        0,
        input.path,
      );
    } finally {
      await parent.close();
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw notRegular(input.path, { isDirectory: st.isDirectory() });
      const size = st.size;
      const offset = Math.min(input.offset ?? 0, size);
      const cap = enc === "base64" ? READ_BASE64_PAGE : READ_CONTENT_BUDGET;
      const want = Math.min(input.length ?? Infinity, size - offset, cap);
      let bytes = await readAt(handle, want, offset);
      // A page may stop early (length, cap); it goes on if bytes remain in the file.
      const more = () => offset + bytes.length < size;
      if (enc === "base64") {
        return {
          success: true,
          content: bytesToBase64(bytes),
          size,
          encoding: enc,
          truncated: more(),
          offset,
          length: bytes.length,
        };
      }
      let n = bytes.length;
      if (more()) n = utf8Boundary(bytes, n);
      let text: string;
      try {
        text = decoder.decode(bytes.subarray(0, n));
      } catch {
        throw new SyscallError(
          "INVALID_MSG",
          `${input.path}: bytes ${offset}–${
            offset + n
          } are not valid UTF-8 (a binary file, or an offset inside a character); read it with encoding "base64"`,
        );
      }
      if (n === 0 && bytes.length > 0) {
        throw new SyscallError(
          "INVALID_MSG",
          `${input.path}: length ${input.length} at offset ${offset} ends inside the first character; ask for at least 4 bytes`,
        );
      }
      // Escaping can make the text larger than its bytes (a control character takes 6 bytes
      // in JSON): cut it to the budget, on a character boundary, and page on from there.
      const fitted = fitJsonString(text, READ_CONTENT_BUDGET);
      if (fitted.truncated) {
        text = fitted.text;
        n = encoder.encode(text).length;
      }
      bytes = bytes.subarray(0, n);
      return {
        success: true,
        content: text,
        size,
        encoding: enc,
        truncated: more(),
        offset,
        length: n,
      };
    } finally {
      await handle.close().catch(() => {});
    }
  },
});

/** Write all of `bytes` through `handle`. */
async function writeAll(handle: fsp.FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

function tempName(): string {
  const rand = crypto.getRandomValues(new Uint8Array(8));
  const hex = Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("");
  return `.agentos-write-${hex}.tmp`;
}

/** Write `bytes` to a new temporary file in `dir` (mode from umask, or `mode`), fsynced. */
async function writeTemp(
  dir: VerifiedDir,
  bytes: Uint8Array,
  mode: number | null,
): Promise<string> {
  const tmp = tempName();
  const handle = await dir.openEntry(tmp, O.O_WRONLY | O.O_CREAT | O.O_EXCL, 0o666);
  try {
    if (mode !== null) await handle.chmod(mode);
    await writeAll(handle, bytes);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await Deno.remove(dir.entry(tmp)).catch(() => {});
    throw err;
  }
  await handle.close();
  return tmp;
}

function fsError(err: unknown, shown: string): SyscallError {
  if (err instanceof SyscallError) return err;
  const code = (err as { code?: string }).code;
  if (code === "ENOSPC") return new SyscallError("ERROR", `${shown}: no space left on device`);
  if (code === "EDQUOT") return new SyscallError("QUOTA_EXCEEDED", `${shown}: disk quota exceeded`);
  if (code === "EACCES" || code === "EPERM" || err instanceof Deno.errors.PermissionDenied) {
    return new SyscallError(
      "PERMISSION_DENIED",
      `Permission denied: the operating system refused to write ${shown}`,
    );
  }
  if (code === "ENOENT" || err instanceof Deno.errors.NotFound) {
    return new SyscallError("NOT_FOUND", `${shown}: the directory changed during the write`);
  }
  return new SyscallError("ERROR", `${shown}: ${(err as Error)?.message ?? String(err)}`);
}

/** WRITE: write, create or append a file. */
export const write = defineSyscall({
  op: Op.WRITE,
  name: "WRITE",
  summary:
    'Write a file: mode "write" (atomic replace, default), "create" (fails if it exists) or "append"; utf8 or base64 content.',
  schema: z.object({
    path: z.string().max(4096),
    content: z.string(),
    mode: z.enum(["write", "append", "create"]).optional(),
    encoding: encoding.optional(),
    mkdirs: z.boolean().optional(),
  }).strict(),
  right: "can_write",
  emptyResponse: { bytes_written: 0 },
  handler: async (input, ctx): Promise<WriteResponse> => {
    const mode = input.mode ?? "write";
    if (input.path.endsWith("/")) {
      throw new SyscallError(
        "INVALID_MSG",
        `${input.path} ends with "/", which names a directory; WRITE writes files (drop the "/")`,
      );
    }
    const bytes = input.encoding === "base64"
      ? fromBase64(input.content)
      : encoder.encode(input.content);
    await ensureWorkspace(ctx.identity, input.path);
    const checked = await checkPathInfo(ctx.identity, input.path, "write", {
      allowMissingParents: input.mkdirs === true,
      workspacesDir: ctx.kernel.layout.workspacesDir,
      stateDir: ctx.kernel.layout.root,
    });
    const target = checked.path;
    const { name } = splitPath(target);
    // The directory to hold open: the deepest existing one; missing ones are made inside it.
    const base = splitPath(checked.missingDirs[0] ?? target).dir;
    let dir: VerifiedDir | null = null;
    try {
      dir = await VerifiedDir.open(base, input.path);
      for (const missing of checked.missingDirs) {
        const next: VerifiedDir = await dir.mkdirEntry(splitPath(missing).name, missing);
        await dir.close();
        dir = next;
      }
      let existingMode: number | null = null;
      let exists = false;
      try {
        const info = await Deno.lstat(dir.entry(name));
        exists = true;
        if (info.isSymlink) {
          throw new SyscallError(
            "PERMISSION_DENIED",
            `Permission denied: ${input.path} is a symbolic link; WRITE never writes through a symlink`,
          );
        }
        if (!info.isFile) throw notRegular(input.path, info);
        existingMode = (info.mode ?? 0o644) & 0o777;
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
      if (exists && mode === "create") {
        throw new SyscallError(
          "ERROR",
          `${input.path} already exists; mode "create" never replaces a file (use mode "write")`,
        );
      }
      if (mode === "append") {
        const flags = O.O_WRONLY | O.O_APPEND | O.O_NONBLOCK | O.O_NOCTTY |
          (exists ? 0 : O.O_CREAT);
        const handle = await dir.openEntry(name, flags, 0o666, input.path);
        try {
          const st = await handle.stat();
          if (!st.isFile()) throw notRegular(input.path, { isDirectory: st.isDirectory() });
          await writeAll(handle, bytes);
          await handle.datasync();
        } finally {
          await handle.close().catch(() => {});
        }
        return { success: true, bytes_written: bytes.length, path: target };
      }
      const tmp = await writeTemp(dir, bytes, existingMode);
      try {
        if (mode === "create") {
          // link(2) fails if the name exists: the file appears complete, or not at all.
          try {
            await fsp.link(dir.entry(tmp), dir.entry(name));
          } catch (err) {
            if ((err as { code?: string }).code === "EEXIST") {
              throw new SyscallError(
                "ERROR",
                `${input.path} already exists; mode "create" never replaces a file (use mode "write")`,
              );
            }
            throw err;
          }
        } else {
          await fsp.rename(dir.entry(tmp), dir.entry(name));
        }
      } finally {
        await Deno.remove(dir.entry(tmp)).catch(() => {});
      }
      await dir.sync();
      return { success: true, bytes_written: bytes.length, path: target };
    } catch (err) {
      throw fsError(err, input.path);
    } finally {
      await dir?.close();
    }
  },
});

/**
 * When a client identity leaves, remove its workspace if it is empty (a connection that never
 * wrote to relative paths leaves nothing behind). A non-empty workspace is kept: it holds
 * files the user wrote.
 */
export function releaseClientWorkspace(kernel: Kernel, id: number): void {
  const identity = kernel.identities.get(id);
  if (!identity || identity.kind !== "client") return;
  Deno.remove(identity.workspace).catch(() => {/* missing or not empty: keep */});
}
