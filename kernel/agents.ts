/**
 * The agent supervisor: starts agents as Deno subprocesses whose flags come from their
 * permission record, gives each its private socket and identity, enforces limits, restarts per
 * policy, writes their logs, and makes sure none outlives the kernel (DESIGN sections 3–5).
 * @module
 */
import { basename, dirname, extname, isAbsolute, join, resolve } from "node:path";
import { denoArgs, everythingBut, HIDDEN_ROOTS, isInside } from "../sandbox/flags.ts";
import {
  agentBwrapArgs,
  type AgentMounts,
  type AgentView,
  SYSTEM_DIRS,
  SYSTEM_ETC,
} from "../sandbox/agent_bwrap.ts";
import { ambientSecretPaths, isLoaderVariable } from "../sandbox/bwrap.ts";
import { checkPath, O, openVerified } from "../sandbox/paths.ts";
import {
  type Level,
  levelRank,
  meetPermissions,
  type Permissions,
} from "../sandbox/permissions.ts";
import { permissionDenied, SyscallError } from "./errors.ts";
import type { Identity } from "./identity.ts";
import type { Kernel } from "./kernel.ts";
import { AgentLog } from "./agent_log.ts";
import { nameProblem } from "./names.ts";
import { AuditTap, type AuditTools, EventBudget, findAuditTools, makeFifo } from "./agent_audit.ts";
import { grantsFromArgs, refusal } from "../sandbox/audit.ts";
import {
  type AgentDeno,
  type HostFacilities,
  prepareSdk,
  probeHost,
  processTree,
  resolveAgentDeno,
  type SdkRuntime,
  treeCpuMs,
  treeRss,
  verifySdk,
} from "./agent_runtime.ts";

/** Lifecycle states of an agent. */
export type AgentState = "starting" | "running" | "exited" | "failed" | "killed" | "restarting";
/** Restart policies. */
export type RestartPolicy = "never" | "on-failure" | "always";

/** Resource limits of one agent; each is enforced or the spawn is refused. */
export interface AgentLimits {
  /** Resident memory in MiB (V8 heap flag plus an RSS watchdog). */
  memory_mb?: number;
  /** User plus system CPU time in ms (watchdog on /proc/<pid>/stat). */
  cpu_time_ms?: number;
  /** Wall-clock time in ms per run. */
  timeout_ms?: number;
  /** Processes the agent may run at once (only 1 is enforceable: no --allow-run). */
  pids?: number;
}

/** A validated spawn request. */
export interface SpawnSpec {
  name?: string;
  script: string;
  level: Level;
  network?: string[];
  canSpawn: boolean;
  limits: AgentLimits;
  args: string[];
  env: Record<string, string>;
  restartPolicy: RestartPolicy;
  maxRestarts: number;
  restartWindowMs: number;
}

/** One row of LIST. */
export interface AgentInfo {
  id: number;
  name: string;
  pid: number | null;
  state: AgentState;
  uptime_ms: number;
  level: Level;
  parent_id: number | null;
  exit_code: number | null;
  exit_reason: string | null;
  restarts: number;
}

/** Largest script file copied for an agent (see `#snapshotScript`). */
const MAX_SCRIPT_BYTES = 16 * 1024 * 1024;
/** Smallest memory limit accepted: below it the runtime itself does not fit. */
export const MIN_MEMORY_MB = 48;
const WATCH_INTERVAL_MS = 100;
const MAX_BACKOFF_MS = 30_000;
/** Finished agents remembered for LIST. */
const MAX_FINISHED = 1000;

interface Agent {
  id: number;
  name: string;
  identity: Identity;
  spec: SpawnSpec;
  parentId: number | null;
  state: AgentState;
  pid: number | null;
  child: Deno.ChildProcess | null;
  startedAt: number;
  exitCode: number | null;
  exitReason: string | null;
  restarts: number;
  restartTimes: number[];
  /** Set when the agent must not run again (KILL, kernel shutdown). */
  stopRequested: boolean;
  /** Why the current run was killed by the kernel (limit), if it was. */
  limitReason: string | null;
  runDir: string;
  socket: string;
  /** The script as given (resolved): inline source's file in the run directory, or a path. */
  script: string;
  /** What the runtime loads this run: `script`, or the kernel's copy of it (see #snapshotScript). */
  runScript: string;
  log: AgentLog;
  timeout: ReturnType<typeof setTimeout> | null;
  restartTimer: ReturnType<typeof setTimeout> | null;
  exited: Promise<void>;
  finished: boolean;
  /** Runs under bwrap in its own pid namespace (unrestricted agents). */
  pidNamespace: boolean;
  /** The named pipe its runtime writes permission audit records to, or null (no auditing). */
  auditFifo: string | null;
  /** The reader of the current run's audit records. */
  audit: AuditTap | null;
  /** Limits the blocked-check events it can cause. */
  auditBudget: EventBudget;
}

/** Most `syscall.blocked` events one agent's refused permission checks publish per second. */
export const MAX_BLOCKED_EVENTS_PER_SECOND = 20;

const TERMINAL: ReadonlySet<AgentState> = new Set(["exited", "failed", "killed"]);

/**
 * Environment names an agent may not be given: they steer the runtime, the dynamic loader or
 * the C library of the processes that start it (setpriv, bwrap, deno), or the kernel. The proxy
 * variables matter most: Deno's fetch sends every request to `HTTP(S)_PROXY`/`ALL_PROXY`
 * without checking the proxy's host against `--allow-net`, so a spawner could hand a child a
 * way around its network allowlist (to any host the proxy address names).
 */
export function reservedEnvName(name: string): boolean {
  return isLoaderVariable(name.toUpperCase()) ||
    /^(AGENTOS_|DENO_|LD_|DYLD_|NODE_|GLIBC_|MALLOC_|SSL_|RUST_|V8_)/i.test(name) ||
    [
      "PATH",
      "HOME",
      "TMPDIR",
      "NO_COLOR",
      "HTTP_PROXY",
      "HTTPS_PROXY",
      "ALL_PROXY",
      "NO_PROXY",
      "GCONV_PATH",
      "LOCPATH",
      "NLSPATH",
      "HOSTALIASES",
      "RES_OPTIONS",
      "LOCALDOMAIN",
      "TZDIR",
    ].includes(name.toUpperCase());
}

/** The supervisor of every agent of one kernel. */
export class AgentSupervisor {
  #agents = new Map<number, Agent>();
  #finished: number[] = [];
  #host: HostFacilities = { setpriv: null, proc: false, clockTicks: 100, bwrap: null };
  #deno: AgentDeno = { path: null, source: "none" };
  #sdk: SdkRuntime | null = null;
  #watch: ReturnType<typeof setInterval> | undefined;
  #stopping = false;
  #nameCounter = 0;
  #ready: Promise<void> | null = null;
  #auditTools: AuditTools | null = null;

  constructor(private readonly kernel: Kernel) {
    kernel.onShutdown(() => this.stopAll());
  }

  /** Agents' Deno executable and where it came from. */
  get deno(): AgentDeno {
    return this.#deno;
  }

  /** Host facilities found at start. */
  get host(): HostFacilities {
    return this.#host;
  }

  /** Prepare the SDK copy, resolve the agents' Deno, probe the host. Logs what it found. */
  start(): Promise<void> {
    this.#ready = this.#start();
    return this.#ready;
  }

  async #start(): Promise<void> {
    const k = this.kernel;
    this.#deno = resolveAgentDeno(k.config.agentDeno);
    this.#host = await probeHost();
    this.#sdk = await prepareSdk(k.layout.sdkDir);
    if (this.#deno.path) {
      k.log.info("agent runtime", { deno: this.#deno.path, from: this.#deno.source });
    } else {
      k.log.warn(
        "no Deno found for agents: SPAWN will fail; give --deno PATH or AGENTOS_DENO, or put deno on PATH",
        { tried: this.#deno.source },
      );
    }
    if (!this.#host.setpriv) {
      k.log.warn(
        "setpriv --pdeathsig is unavailable: agents are stopped on a clean shutdown, but a SIGKILLed kernel may leave them running",
      );
    }
    if (!this.#host.bwrap) {
      k.log.warn(
        "bwrap is unavailable or cannot create namespaces here: agents run with Deno's permission flags only (no OS-level masking of blocked paths), and processes started by unrestricted agents may survive a SIGKILLed kernel",
      );
    }
    if (!this.#host.proc) {
      k.log.warn("/proc is unreadable: SPAWN will refuse memory and cpu_time limits");
    }
    this.#auditTools = findAuditTools(this.#host.setpriv);
    if (!this.#auditTools) {
      k.log.warn(
        "mkfifo or cat is missing: agents' refused permission checks are not published as syscall.blocked events",
      );
    }
  }

  /**
   * LIST. An unrestricted caller (or the kernel itself, with no caller) sees every agent; any
   * other caller sees only itself and the agents it spawned, directly or through its
   * descendants — never other trees' agents, their names, pids or exit reasons.
   */
  list(caller?: Identity): AgentInfo[] {
    const now = Date.now();
    const all = caller === undefined || caller.permissions.level === "unrestricted";
    return [...this.#agents.values()].filter((a) =>
      all || a.id === caller.id || this.#isAncestor(caller.id, a)
    ).map((a) => ({
      id: a.id,
      name: a.name,
      pid: a.pid,
      state: a.state,
      uptime_ms: a.pid !== null && !TERMINAL.has(a.state) ? now - a.startedAt : 0,
      // The record in force (SET_PERMS may have lowered it since the spawn).
      level: a.identity.permissions.level,
      parent_id: a.parentId,
      exit_code: a.exitCode,
      exit_reason: a.exitReason,
      restarts: a.restarts,
    }));
  }

  /** Look an agent up by id, or by name (a live agent first). */
  find(target: { id?: number; name?: string }): Agent | undefined {
    if (target.id !== undefined) return this.#agents.get(target.id);
    let found: Agent | undefined;
    for (const a of this.#agents.values()) {
      if (a.name !== target.name) continue;
      if (!a.finished) return a;
      found = a;
    }
    return found;
  }

  /** SPAWN on behalf of `caller`. */
  async spawn(spec: SpawnSpec, caller: Identity): Promise<AgentInfo> {
    const k = this.kernel;
    await this.#ready?.catch(() => {});
    if (this.#stopping) throw new SyscallError("ERROR", "the kernel is shutting down");
    if (!this.#deno.path || !this.#sdk) {
      throw new SyscallError(
        "ERROR",
        "no Deno runtime for agents: start the kernel with --deno PATH or AGENTOS_DENO, or put deno on PATH",
      );
    }
    this.#checkRights(spec, caller);
    this.#checkLimits(spec);
    await this.#ensureSdk();
    const scriptPath = await this.#resolveScript(spec.script, caller);

    const name = spec.name ?? this.#generateName();
    const problem = nameProblem(name);
    if (problem !== null) throw new SyscallError("INVALID_MSG", `SPAWN: field "name": ${problem}`);
    if (k.identities.byName(name)) {
      throw new SyscallError("ERROR", `name "${name}" is taken by a live agent or client`);
    }
    this.#checkWorkspaceFree(name);
    await this.#checkWorkspaceOwner(name, caller);
    const network = spec.network ?? (spec.level === "standard" ? ["*"] : undefined);
    const identity = k.identities.create({
      kind: "agent",
      level: spec.level,
      name,
      parentId: caller.id,
      workspaceName: name,
      network,
    });
    if (spec.canSpawn) identity.permissions.can_spawn = true;
    identity.permissions = boundedBySpawner(identity.permissions, caller.permissions, identity);
    const runDir = join(k.layout.runDir, String(identity.id));
    const socket = join(runDir, "agent.sock");
    let script = scriptPath;
    let auditFifo: string | null = null;
    try {
      await Deno.mkdir(identity.workspace, { recursive: true, mode: 0o700 });
      await Deno.mkdir(join(identity.workspace, "tmp"), { recursive: true, mode: 0o700 });
      await Deno.mkdir(runDir, { recursive: true, mode: 0o700 });
      if (script === null) {
        script = join(runDir, "main.ts");
        await Deno.writeTextFile(script, spec.script, { mode: 0o400 });
      }
      if (this.#auditTools) {
        // Beside the run directory, not in it: the agent may read its run directory, and must
        // not be able to read its own audit records away from the kernel.
        const fifo = `${runDir}.audit`;
        await Deno.remove(fifo).catch(() => {});
        auditFifo = await makeFifo(this.#auditTools, fifo) ? fifo : null;
      }
      k.server.listen(socket, () => identity, false);
    } catch (err) {
      k.releaseIdentity(identity.id);
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
      if (auditFifo) await Deno.remove(auditFifo).catch(() => {});
      throw new SyscallError("ERROR", `cannot prepare agent "${name}": ${(err as Error).message}`);
    }
    const agent: Agent = {
      id: identity.id,
      name,
      identity,
      spec: { ...spec, network },
      parentId: caller.id,
      state: "starting",
      pid: null,
      child: null,
      startedAt: Date.now(),
      exitCode: null,
      exitReason: null,
      restarts: 0,
      restartTimes: [],
      stopRequested: false,
      limitReason: null,
      runDir,
      socket,
      script,
      runScript: script,
      log: new AgentLog(join(k.layout.logsDir, `${name}.log`), k.config.agentLogMaxBytes),
      timeout: null,
      restartTimer: null,
      exited: Promise.resolve(),
      finished: false,
      pidNamespace: false,
      auditFifo,
      audit: null,
      auditBudget: new EventBudget(MAX_BLOCKED_EVENTS_PER_SECOND),
    };
    this.#agents.set(agent.id, agent);
    try {
      await this.#snapshotScript(agent);
      this.#launch(agent);
    } catch (err) {
      this.#finish(agent, "failed", null, `could not start: ${(err as Error).message}`);
      throw new SyscallError("ERROR", `cannot start agent "${name}": ${(err as Error).message}`);
    }
    k.bus.emit("agent.spawned", {
      agentId: agent.id,
      name,
      pid: agent.pid ?? 0,
      level: spec.level,
    });
    this.#startWatch();
    return this.list().find((a) => a.id === agent.id)!;
  }

  /**
   * KILL on behalf of `caller`: SIGTERM, a grace period, SIGKILL, to the whole process group,
   * descendants first. Allowed to the agent's ancestors and unrestricted callers.
   */
  async kill(target: { id?: number; name?: string }, caller: Identity): Promise<Agent> {
    const agent = this.find(target);
    if (!agent) {
      throw new SyscallError(
        "NOT_FOUND",
        `no agent ${target.id !== undefined ? `with id ${target.id}` : `named "${target.name}"`}`,
      );
    }
    if (
      caller.permissions.level !== "unrestricted" && agent.parentId !== caller.id &&
      !this.#isAncestor(caller.id, agent)
    ) {
      throw permissionDenied(
        `agent ${agent.id} ("${agent.name}") was not spawned by you or your descendants`,
      );
    }
    await this.#stop(agent, `killed by identity ${caller.id}`);
    return agent;
  }

  /** Stop every agent (kernel shutdown). */
  async stopAll(): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      [...this.#agents.values()].filter((a) => !a.finished).map((a) =>
        this.#stop(a, "kernel shutdown")
      ),
    );
    if (this.#watch !== undefined) clearInterval(this.#watch);
  }

  #isAncestor(ancestorId: number, agent: Agent): boolean {
    let parent = agent.parentId;
    for (let hops = 0; parent !== null && hops < 10_000; hops++) {
      if (parent === ancestorId) return true;
      parent = this.#agents.get(parent)?.parentId ?? null;
    }
    return false;
  }

  async #stop(agent: Agent, reason: string): Promise<void> {
    agent.stopRequested = true;
    // Descendants first, so no grandchild is left without its parent.
    const children = [...this.#agents.values()].filter((a) =>
      a.parentId === agent.id && !a.finished
    );
    await Promise.all(children.map((c) => this.#stop(c, `parent ${agent.id} killed`)));
    if (agent.restartTimer !== null) {
      clearTimeout(agent.restartTimer);
      agent.restartTimer = null;
    }
    if (agent.child && agent.pid !== null && !TERMINAL.has(agent.state)) {
      agent.exitReason = reason;
      if (agent.pidNamespace) {
        // bubblewrap ends the whole namespace when it gets SIGTERM: ask only the processes
        // inside it (below bwrap and the namespace's init), so the agent gets its grace period.
        for (const p of processTree(agent.pid).slice(2)) {
          try {
            Deno.kill(p, "SIGTERM");
          } catch { /* gone */ }
        }
      } else this.#signal(agent.pid, "SIGTERM");
      const grace = new Promise<"grace">((r) => {
        const t = setTimeout(() => r("grace"), this.kernel.config.agentKillGraceMs);
        agent.exited.finally(() => clearTimeout(t));
      });
      if (await Promise.race([agent.exited.then(() => "exited" as const), grace]) === "grace") {
        this.#signal(agent.pid, "SIGKILL");
      }
      await agent.exited;
    } else if (!agent.finished) {
      this.#finish(agent, "killed", agent.exitCode, reason);
    }
  }

  #signal(pid: number, signal: Deno.Signal): void {
    try {
      Deno.kill(-pid, signal); // the whole process group
    } catch {
      try {
        Deno.kill(pid, signal);
      } catch { /* already gone */ }
    }
  }

  #checkRights(spec: SpawnSpec, caller: Identity): void {
    const mine = caller.permissions;
    if (levelRank(spec.level) > levelRank(mine.level)) {
      throw permissionDenied(
        `cannot spawn an agent at level ${spec.level}, above your own level ${mine.level}`,
      );
    }
    if (spec.canSpawn && !mine.can_spawn) {
      throw permissionDenied("cannot give can_spawn, which you do not have");
    }
    if (spec.network !== undefined) {
      if (spec.level === "readonly" || spec.level === "minimal") {
        throw permissionDenied(`level ${spec.level} cannot be given network access`);
      }
      if (!mine.network.includes("*")) {
        const extra = spec.network.filter((d) => !mine.network.includes(d));
        if (extra.length) {
          throw permissionDenied(
            `cannot grant network access you do not have: ${extra.slice(0, 5).join(", ")}`,
          );
        }
      }
    }
  }

  #checkLimits(spec: SpawnSpec): void {
    const l = spec.limits;
    if ((l.memory_mb !== undefined || l.cpu_time_ms !== undefined) && !this.#host.proc) {
      throw new SyscallError(
        "ERROR",
        "memory and cpu_time limits cannot be enforced on this host (/proc is unreadable); spawn without them",
      );
    }
    if (l.memory_mb !== undefined && l.memory_mb < MIN_MEMORY_MB) {
      throw new SyscallError(
        "INVALID_MSG",
        `limits.memory_mb ${l.memory_mb} is below the agent runtime's own footprint; the least accepted is ${MIN_MEMORY_MB}`,
      );
    }
    if (l.pids !== undefined && spec.level === "unrestricted") {
      throw new SyscallError(
        "ERROR",
        "a pids limit cannot be enforced for an unrestricted agent on this host (it may run processes, and RLIMIT_NPROC is per user); spawn without it or at a lower level",
      );
    }
    // Other levels run without --allow-run: exactly one process, so any pids >= 1 holds.
  }

  /** A path script resolved to a real file the caller may read, or null for inline source. */
  async #resolveScript(script: string, caller: Identity): Promise<string | null> {
    const looksLikePath = !script.includes("\n") && /\.(ts|js|mts|mjs|tsx|jsx)$/.test(script) &&
      script.length <= 4096;
    if (!looksLikePath) return null;
    const abs = isAbsolute(script) ? script : resolve(caller.workspace, script);
    // Only path characters: a missing file is a mistake worth reporting, not inline source.
    const pathLike = /^[\w./~@+-]+$/.test(script);
    let real: string;
    try {
      real = await Deno.realPath(abs);
      if (!(await Deno.stat(real)).isFile) throw new Error("not a file");
    } catch {
      if (pathLike) {
        throw new SyscallError("NOT_FOUND", `script file ${abs} does not exist or is not a file`);
      }
      return null; // no such file: inline source
    }
    // The one path checker (sandbox/paths.ts): blocked paths, other identities' workspaces and
    // the caller's read roots, with symlinks resolved. A caller cannot SPAWN what it cannot READ.
    try {
      await checkPath(caller, real, "read", { workspacesDir: this.kernel.layout.workspacesDir });
    } catch (err) {
      if (err instanceof SyscallError && err.code === "PERMISSION_DENIED") {
        throw permissionDenied(
          `cannot spawn ${abs}: you may not read it (${
            err.message.replace(/^Permission denied: /, "")
          })`,
        );
      }
      throw err;
    }
    // Nothing else in the kernel's state directory is a script for anyone but unrestricted.
    const inState = isInside(real, this.kernel.layout.root) && !isInside(real, caller.workspace);
    if (caller.permissions.level !== "unrestricted" && inState) {
      throw permissionDenied(`cannot spawn ${abs}: it is one of the kernel's own files`);
    }
    if (real.includes(",")) {
      throw new SyscallError("INVALID_MSG", `script path ${real} contains a comma; rename it`);
    }
    return real;
  }

  /**
   * An agent's workspace is `workspaces/<name>`: refuse a name whose workspace belongs to
   * someone else — a live identity (a client, or an agent that took another name with
   * REGISTER), or any client (their workspaces are `client-<id>-<run>`, kept after they leave
   * when not empty).
   */
  #checkWorkspaceFree(name: string): void {
    if (name.startsWith("client-")) {
      throw new SyscallError(
        "INVALID_MSG",
        `SPAWN: field "name": names starting with "client-" are reserved for clients' workspaces`,
      );
    }
    const ws = join(this.kernel.layout.workspacesDir, name);
    for (const identity of this.kernel.identities.all()) {
      if (identity.workspace === ws) {
        throw new SyscallError(
          "ERROR",
          `name "${name}": its workspace belongs to live identity ${identity.id}; pick another name`,
        );
      }
    }
  }

  /** Restore any SDK file that changed since the kernel wrote it (and say so). */
  async #ensureSdk(): Promise<void> {
    const restored = await verifySdk(this.#sdk!);
    if (restored.length) {
      this.kernel.log.warn("the agents' SDK copy was modified; restored it", { files: restored });
    }
  }

  /**
   * A finished agent's workspace stays on disk, and an agent spawned later under the same name
   * gets it. Below unrestricted, only the tree that spawned the previous holder may do that:
   * anyone else would read another tree's files. A workspace the kernel knows nothing about
   * (left by an earlier kernel run, or forgotten) is reused by unrestricted callers only.
   */
  async #checkWorkspaceOwner(name: string, caller: Identity): Promise<void> {
    if (caller.permissions.level === "unrestricted") return;
    const ws = join(this.kernel.layout.workspacesDir, name);
    const exists = await Deno.lstat(ws).then(() => true, () => false);
    if (!exists) return;
    let previous: Agent | undefined;
    for (const a of this.#agents.values()) if (a.name === name) previous = a;
    if (previous && (previous.parentId === caller.id || this.#isAncestor(caller.id, previous))) {
      return;
    }
    throw permissionDenied(
      `the workspace of "${name}" holds the files of an agent that you did not spawn; pick another name`,
    );
  }

  #generateName(): string {
    for (;;) {
      const name = `agent-${++this.#nameCounter}`;
      if (this.kernel.identities.byName(name)) continue;
      const ws = join(this.kernel.layout.workspacesDir, name);
      if ([...this.kernel.identities.all()].some((i) => i.workspace === ws)) continue;
      try {
        Deno.lstatSync(ws);
        continue; // a generated name always gets a fresh workspace
      } catch {
        return name;
      }
    }
  }

  #paths(agent: Agent) {
    const k = this.kernel;
    const sdk = this.#sdk!;
    return {
      workspace: agent.identity.workspace,
      runDir: agent.runDir,
      socket: agent.socket,
      mainSocket: k.config.socket,
      stateRoot: k.layout.root,
      sdkDir: sdk.dir,
      importMap: sdk.importMap,
      bootstrap: sdk.bootstrap,
      script: agent.runScript,
      // Blocked entries that are (or lie under) symlinks: Deno compares paths as written, so
      // deny what they point to as well.
      extraDenied: [...sshAgentDir(), ...resolvedBlocked(agent.identity.permissions)],
      outsideState: everythingBut(k.layout.root, (dir) => {
        try {
          return [...Deno.readDirSync(dir)].map((e) => e.name);
        } catch {
          return [];
        }
      }),
    };
  }

  /** Roots outside the state directory (the workspace is bound anyway); "/" means everything. */
  #roots(list: readonly string[]): string[] {
    const root = this.kernel.layout.root;
    return list.filter((r) => isAbsolute(r) && !isInside(r, root) && !HIDDEN_ROOTS.includes(r));
  }

  /** The OS view a record gets (see `sandbox/agent_bwrap.ts`). */
  #view(p: Permissions): AgentView {
    if (this.#roots(p.filesystem.write).includes("/")) return "host-rw";
    if (this.#roots(p.filesystem.read).includes("/")) return "host-ro";
    return "system";
  }

  /**
   * Below unrestricted, an agent whose view is `system` (it reads nothing but its own files)
   * runs a copy of its script that the kernel makes at every start, opened without following
   * symlinks and verified to be the checked path. Otherwise whoever can write where the script
   * lives (e.g. the spawner's own EXEC) could swap it for a symlink after SPAWN's check, and the
   * read grant and read-only bind of the script would carry the link's target — any file of the
   * host — into the agent. (Its sibling files are not readable at this view anyway.)
   */
  async #snapshotScript(agent: Agent): Promise<void> {
    const p = agent.identity.permissions;
    if (
      isInside(agent.script, agent.runDir) || p.level === "unrestricted" ||
      this.#view(p) !== "system"
    ) {
      agent.runScript = agent.script;
      return;
    }
    const fh = await openVerified(agent.script, O.O_RDONLY);
    let data: Uint8Array;
    try {
      const size = (await fh.stat()).size;
      if (size > MAX_SCRIPT_BYTES) {
        throw new SyscallError(
          "INVALID_MSG",
          `script ${agent.script} is larger than ${MAX_SCRIPT_BYTES} bytes`,
        );
      }
      data = new Uint8Array(await fh.readFile());
    } finally {
      await fh.close().catch(() => {});
    }
    const copy = join(agent.runDir, `script${extname(agent.script)}`);
    await Deno.remove(copy).catch(() => {});
    await Deno.writeFile(copy, data, { mode: 0o400, createNew: true });
    agent.runScript = copy;
  }

  /**
   * What the OS layer shows `agent` (see `sandbox/agent_bwrap.ts`): a view of the host no wider
   * than its record — symlinks in its workspace then lead nowhere its level may not go — with
   * blocked paths and the kernel's files masked (existing paths only).
   */
  #mounts(agent: Agent): AgentMounts {
    const k = this.kernel;
    const p = agent.identity.permissions;
    const keep = [agent.identity.workspace, agent.runDir];
    // The audit pipe: bound so the runtime can open it; Deno's flags do not grant it.
    const keepFiles = agent.auditFifo ? [agent.auditFifo] : [];
    const roots = (list: readonly string[]) => this.#roots(list);
    const view = this.#view(p);
    // Existing files and directories (a bind follows a symlink to what it points to).
    const existing = (list: readonly string[]) =>
      list.filter((d) => {
        try {
          const info = Deno.statSync(d);
          return info.isDirectory || info.isFile;
        } catch {
          return false;
        }
      });
    const systemDirs: string[] = [];
    const systemLinks: { path: string; target: string }[] = [];
    if (view === "system") {
      for (const d of SYSTEM_DIRS) {
        try {
          const info = Deno.lstatSync(d);
          if (info.isSymlink) systemLinks.push({ path: d, target: Deno.readLinkSync(d) });
          else if (info.isDirectory) systemDirs.push(d);
        } catch { /* not on this host */ }
      }
      // A few files of /etc (bound from what they point to, e.g. resolv.conf).
      systemDirs.push(...existing(SYSTEM_ETC));
      // Extra read roots of the record (e.g. given by SET_PERMS), read-only.
      systemDirs.push(...existing(roots(p.filesystem.read)).filter((d) => d !== "/"));
    }
    // Extra write roots of the record, writable (in the read-only and system views).
    const writable = view === "host-rw" ? [] : existing(roots(p.filesystem.write));
    const candidates = [
      ...p.filesystem.blocked,
      // A mount would follow a symlinked blocked entry: mask its target instead.
      ...resolvedBlocked(p),
      k.config.socket,
      k.layout.kernelDir,
      k.layout.logsDir,
      k.layout.runDir,
      k.layout.workspacesDir,
      ...sshAgentDir(),
      // Daemon and session sockets (Docker, D-Bus, ssh-agent...): a symlink in the workspace
      // would otherwise reach them past Deno's write deny on /run.
      ...ambientSecretPaths(
        {
          SSH_AUTH_SOCK: Deno.env.get("SSH_AUTH_SOCK"),
          XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR"),
        },
        Deno.uid(),
      ),
    ].filter((x) => isAbsolute(x) && !HIDDEN_ROOTS.some((h) => isInside(x, h)));
    const visible = view === "system"
      ? (x: string) => [...systemDirs, ...writable].some((d) => isInside(x, d))
      : () => true;
    const maskDirs: string[] = [];
    const maskFiles: string[] = [];
    // Mount points must be real paths: resolve the directories above each (e.g. /var/run ->
    // /run), keeping the last component as it is.
    const real = candidates.flatMap((path) => {
      try {
        return [join(Deno.realPathSync(dirname(path)), basename(path))];
      } catch {
        return []; // its directory does not exist: nothing to hide
      }
    });
    for (const path of [...new Set(real)]) {
      if (keep.some((own) => isInside(own, path) ? false : isInside(path, own))) continue;
      if (!visible(path)) continue; // not in the view at all
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(path);
      } catch {
        continue; // nothing there to hide
      }
      if (info.isSymlink) continue; // a mount would follow it; its target is masked instead
      (info.isDirectory ? maskDirs : maskFiles).push(path);
    }
    const masked = (x: string) => maskDirs.some((d) => isInside(x, d));
    const own = (x: string) => keep.some((o) => isInside(x, o));
    return {
      maskDirs,
      maskFiles: maskFiles.filter((f) => !masked(f)),
      keep: [...keep, ...keepFiles],
      writable,
      keepReadOnly: [
        // The SDK is blocked (masked) like every kernel file, and bound back read-only: the
        // agent loads it, and cannot change what other agents load.
        this.#sdk!.dir,
        // The Deno executable and the script, wherever they are.
        ...(view === "system" ? [this.#deno.path!] : []),
        ...[agent.runScript].filter((x) => (view === "system" || masked(x)) && !own(x)),
      ],
      noNetwork: p.network.length === 0,
      confine: p.level !== "unrestricted",
      view,
      systemDirs,
      systemLinks,
    };
  }

  #launch(agent: Agent): void {
    const k = this.kernel;
    const spec = agent.spec;
    const permissions: Permissions = agent.identity.permissions;
    const args = denoArgs({
      permissions,
      paths: this.#paths(agent),
      heapMb: spec.limits.memory_mb,
      envNames: Object.keys(spec.env),
      args: spec.args,
    });
    const ws = agent.identity.workspace;
    const env: Record<string, string> = {
      ...spec.env,
      PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: ws,
      TMPDIR: join(ws, "tmp"),
      DENO_DIR: join(ws, ".deno"),
      NO_COLOR: "1",
      AGENTOS_SOCKET: agent.socket,
      AGENTOS_AGENT_ID: String(agent.id),
      AGENTOS_AGENT_NAME: agent.name,
      AGENTOS_SCRIPT: agent.runScript,
    };
    // Below unrestricted, the runtime's permission checks go to the kernel (refused ones are
    // published as syscall.blocked events); unrestricted agents are refused nothing.
    const auditing = agent.auditFifo !== null && permissions.level !== "unrestricted";
    if (auditing) env.DENO_AUDIT_PERMISSIONS = agent.auditFifo!;
    const deno = this.#deno.path!;
    // Under bubblewrap (where it works): its own pid namespace, which the OS empties when its
    // first process dies, and below unrestricted, blocked paths masked at the OS level too.
    // Every agent also dies with the kernel (pdeathsig).
    agent.pidNamespace = this.#host.bwrap !== null;
    const inner = agent.pidNamespace
      ? [this.#host.bwrap!, ...agentBwrapArgs(this.#mounts(agent)), "--", deno, ...args]
      : [deno, ...args];
    const [cmd, ...cmdArgs] = this.#host.setpriv
      ? [this.#host.setpriv, "--pdeathsig", "KILL", "--", ...inner]
      : inner;
    const child = new Deno.Command(cmd, {
      args: cmdArgs,
      cwd: ws,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true, // its own process group, so KILL reaches everything it started
    }).spawn();
    agent.child = child;
    agent.pid = child.pid;
    agent.startedAt = Date.now();
    agent.limitReason = null;
    agent.exitCode = null;
    agent.log.note(
      `start agent ${agent.id} "${agent.name}" pid ${child.pid} level ${permissions.level}`,
    );
    this.#setState(agent, "running");
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      try {
        for await (const chunk of stream) agent.log.write(chunk);
      } catch { /* stream broke: the process is gone */ }
    };
    const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
    if (auditing) {
      const grants = grantsFromArgs(args);
      const pid = child.pid;
      agent.audit = new AuditTap(this.#auditTools!, agent.auditFifo!, (record) => {
        const reason = refusal(grants, record, ws);
        if (reason !== null) this.#blocked(agent, pid, record.permission, reason);
      });
    }
    if (spec.limits.timeout_ms !== undefined) {
      agent.timeout = setTimeout(() => {
        this.#limitKill(agent, `timeout of ${spec.limits.timeout_ms} ms reached`);
      }, spec.limits.timeout_ms);
    }
    agent.exited = child.status.then(async (status) => {
      await pumps;
      if (agent.timeout !== null) clearTimeout(agent.timeout);
      agent.timeout = null;
      agent.child = null;
      // Anything it left in its process group goes with it.
      this.#signal(child.pid, "SIGKILL");
      const audit = agent.audit;
      agent.audit = null;
      audit?.close().catch(() => {});
      this.#onExit(agent, status);
    });
    k.log.debug("agent started", { id: agent.id, name: agent.name, pid: child.pid });
  }

  /** Publish one refused permission check of `agent` (within its event budget). */
  #blocked(agent: Agent, pid: number, permission: string, reason: string): void {
    const budget = agent.auditBudget;
    if (!budget.take()) return;
    const more = budget.suppressed;
    budget.suppressed = 0;
    const text = more ? `${reason} (and ${more} more refused checks not reported)` : reason;
    this.kernel.bus.emit("syscall.blocked", {
      identityId: agent.id,
      op: `deno:${permission}`,
      reason: text,
    });
    this.kernel.log.debug("agent permission check refused", {
      id: agent.id,
      name: agent.name,
      pid,
      reason: text,
    });
  }

  #limitKill(agent: Agent, reason: string): void {
    if (agent.pid === null || agent.child === null || agent.limitReason !== null) return;
    agent.limitReason = reason;
    this.kernel.log.warn("agent limit exceeded", { id: agent.id, name: agent.name, reason });
    this.kernel.bus.emit("agent.state", {
      agentId: agent.id,
      name: agent.name,
      state: agent.state,
      reason,
    });
    this.#signal(agent.pid, "SIGKILL");
  }

  #onExit(agent: Agent, status: Deno.CommandStatus): void {
    const code = status.code;
    agent.exitCode = code;
    const how = status.signal ? `signal ${status.signal}` : `exit code ${code}`;
    agent.log.note(`agent ${agent.id} ended: ${agent.limitReason ?? how}`);
    if (agent.stopRequested) {
      this.#finish(agent, "killed", code, agent.exitReason ?? "killed");
      return;
    }
    const failed = agent.limitReason !== null || code !== 0;
    const reason = agent.limitReason ?? (failed ? `failed with ${how}` : "exited with code 0");
    agent.exitReason = reason;
    const policy = agent.spec.restartPolicy;
    const wantRestart = policy === "always" || (policy === "on-failure" && failed);
    if (!wantRestart || this.#stopping) {
      this.#finish(agent, failed ? "failed" : "exited", code, reason);
      return;
    }
    const now = Date.now();
    agent.restartTimes = agent.restartTimes.filter((t) => now - t < agent.spec.restartWindowMs);
    if (agent.restartTimes.length >= agent.spec.maxRestarts) {
      this.#finish(
        agent,
        failed ? "failed" : "exited",
        code,
        `${reason}; gave up after ${agent.restartTimes.length} restarts within ${agent.spec.restartWindowMs} ms`,
      );
      return;
    }
    const delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** agent.restartTimes.length);
    agent.restartTimes.push(now);
    this.#setState(agent, "restarting", `${reason}; restarting in ${delay} ms`);
    agent.restartTimer = setTimeout(() => {
      agent.restartTimer = null;
      if (agent.stopRequested || this.#stopping) {
        this.#finish(agent, "killed", code, agent.exitReason ?? "stopped");
        return;
      }
      agent.restarts++;
      this.#ensureSdk().catch(() => {}).then(async () => {
        if (agent.stopRequested || this.#stopping) {
          this.#finish(agent, "killed", code, agent.exitReason ?? "stopped");
          return;
        }
        try {
          await this.#snapshotScript(agent);
          this.#launch(agent);
        } catch (err) {
          this.#finish(agent, "failed", null, `restart failed: ${(err as Error).message}`);
        }
      });
    }, delay);
  }

  #setState(agent: Agent, state: AgentState, reason?: string): void {
    agent.state = state;
    this.kernel.bus.emit("agent.state", { agentId: agent.id, name: agent.name, state, reason });
  }

  /** The agent is done for good: release its socket, identity and name. */
  #finish(agent: Agent, state: AgentState, code: number | null, reason: string): void {
    if (agent.finished) return;
    agent.finished = true;
    agent.exitCode = code;
    agent.exitReason = reason;
    this.#setState(agent, state, reason);
    const k = this.kernel;
    k.server.unlisten(agent.socket, agent.id);
    k.releaseIdentity(agent.id);
    agent.log.close();
    Deno.remove(agent.runDir, { recursive: true }).catch(() => {});
    if (agent.auditFifo) Deno.remove(agent.auditFifo).catch(() => {});
    k.bus.emit("agent.exited", { agentId: agent.id, name: agent.name, exitCode: code, reason });
    k.log.info("agent finished", { id: agent.id, name: agent.name, state, reason });
    this.#finished.push(agent.id);
    while (this.#finished.length > MAX_FINISHED) this.#agents.delete(this.#finished.shift()!);
  }

  #startWatch(): void {
    if (this.#watch !== undefined) return;
    this.#watch = setInterval(() => this.#check(), WATCH_INTERVAL_MS);
    Deno.unrefTimer(this.#watch as unknown as number);
  }

  #check(): void {
    for (const a of this.#agents.values()) {
      if (a.child === null || a.pid === null || a.limitReason !== null) continue;
      const { memory_mb, cpu_time_ms } = a.spec.limits;
      if (memory_mb !== undefined) {
        const rss = treeRss(a.pid);
        if (rss !== null && rss > memory_mb * 1024 * 1024) {
          this.#limitKill(
            a,
            `memory limit ${memory_mb} MiB exceeded (rss ${(rss / 1048576).toFixed(1)} MiB)`,
          );
          continue;
        }
      }
      if (cpu_time_ms !== undefined) {
        const cpu = treeCpuMs(a.pid, this.#host.clockTicks);
        if (cpu !== null && cpu > cpu_time_ms) {
          this.#limitKill(
            a,
            `cpu time limit ${cpu_time_ms} ms exceeded (used ${Math.round(cpu)} ms)`,
          );
        }
      }
    }
  }
}

/** The kernel user's SSH agent socket, if any: never reachable by agents. */
function sshAgentDir(): string[] {
  const sock = Deno.env.get("SSH_AUTH_SOCK");
  return sock && isAbsolute(sock) && !sock.includes(",") ? [sock] : [];
}

/**
 * The blocked entries of `permissions` that resolve (through symlinks) to another absolute
 * path: their real paths. Entries that do not exist or are not links give nothing.
 */
function resolvedBlocked(permissions: Permissions): string[] {
  const out: string[] = [];
  for (const b of permissions.filesystem.blocked) {
    if (!isAbsolute(b)) continue;
    try {
      const real = Deno.realPathSync(b);
      if (real !== b && !real.includes(",")) out.push(real);
    } catch { /* missing: nothing to resolve */ }
  }
  return out;
}

/**
 * No escalation, ever: a new agent's record is its level's defaults met with its spawner's
 * record (rights and-ed, roots and domains intersected, blocked paths united, LLM and EXEC
 * limits minimised), so a spawner narrowed by SET_PERMS — no EXEC, fewer domains, an LLM quota —
 * cannot hand out more than it holds through a child. The child keeps its own workspace (no one
 * else's) wherever its level's defaults cover it, and the level it was given.
 */
export function boundedBySpawner(
  defaults: Permissions,
  spawner: Permissions,
  child: Identity,
): Permissions {
  const out = meetPermissions(defaults, spawner);
  out.level = defaults.level;
  for (const key of ["read", "write"] as const) {
    const covered = defaults.filesystem[key].some((r) => isInside(child.workspace, r));
    if (covered && !out.filesystem[key].some((r) => isInside(child.workspace, r))) {
      out.filesystem[key].push(child.workspace);
    }
  }
  return out;
}
