/**
 * The agent supervisor: starts agents as Deno subprocesses whose flags come from their
 * permission record, gives each its private socket and identity, enforces limits, restarts per
 * policy, writes their logs, and makes sure none outlives the kernel (DESIGN sections 3–5).
 * @module
 */
import { isAbsolute, join, resolve } from "node:path";
import { denoArgs, everythingBut, HIDDEN_ROOTS, isInside } from "../sandbox/flags.ts";
import { agentBwrapArgs, type AgentMounts } from "../sandbox/agent_bwrap.ts";
import {
  type Level,
  levelRank,
  meetPermissions,
  type Permissions,
  withOwnWorkspace,
} from "../sandbox/permissions.ts";
import { permissionDenied, SyscallError } from "./errors.ts";
import type { Identity } from "./identity.ts";
import type { Kernel } from "./kernel.ts";
import { AgentLog } from "./agent_log.ts";
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
  script: string;
  log: AgentLog;
  timeout: ReturnType<typeof setTimeout> | null;
  restartTimer: ReturnType<typeof setTimeout> | null;
  exited: Promise<void>;
  finished: boolean;
  /** Runs under bwrap in its own pid namespace (unrestricted agents). */
  pidNamespace: boolean;
}

const TERMINAL: ReadonlySet<AgentState> = new Set(["exited", "failed", "killed"]);

/** Environment names an agent may not be given (they steer the runtime or the kernel). */
export function reservedEnvName(name: string): boolean {
  return /^(AGENTOS_|DENO_|LD_|DYLD_|NODE_)/i.test(name) ||
    ["PATH", "HOME", "TMPDIR", "NO_COLOR", "RUST_LOG", "RUST_BACKTRACE"].includes(
      name.toUpperCase(),
    );
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
    this.#sdk = await prepareSdk(join(k.layout.root, "sdk"));
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
  }

  /** LIST: every agent, live ones first, then finished ones (most recent last). */
  list(): AgentInfo[] {
    const now = Date.now();
    return [...this.#agents.values()].map((a) => ({
      id: a.id,
      name: a.name,
      pid: a.pid,
      state: a.state,
      uptime_ms: a.pid !== null && !TERMINAL.has(a.state) ? now - a.startedAt : 0,
      level: a.spec.level,
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
    const scriptPath = await this.#resolveScript(spec.script, caller);

    const name = spec.name ?? this.#generateName();
    if (k.identities.byName(name)) {
      throw new SyscallError("ERROR", `name "${name}" is taken by a live agent or client`);
    }
    const network = spec.network ?? (spec.level === "standard" ? ["*"] : undefined);
    const identity = k.identities.create({
      kind: "agent",
      level: spec.level,
      name,
      parentId: caller.id,
      workspaceName: name,
      network,
    });
    // No escalation: the level's defaults, narrowed to what the spawner itself holds (its
    // roots, domains, commands, blocked paths, LLM and EXEC limits).
    identity.permissions = meetPermissions(
      identity.permissions,
      withOwnWorkspace(caller.permissions, identity.workspace),
    );
    if (spec.canSpawn) identity.permissions.can_spawn = true;
    const runDir = join(k.layout.runDir, String(identity.id));
    const socket = join(runDir, "agent.sock");
    let script = scriptPath;
    try {
      await Deno.mkdir(identity.workspace, { recursive: true, mode: 0o700 });
      await Deno.mkdir(join(identity.workspace, "tmp"), { recursive: true, mode: 0o700 });
      await Deno.mkdir(runDir, { recursive: true, mode: 0o700 });
      if (script === null) {
        script = join(runDir, "main.ts");
        await Deno.writeTextFile(script, spec.script, { mode: 0o400 });
      }
      k.server.listen(socket, () => identity, false);
    } catch (err) {
      k.releaseIdentity(identity.id);
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
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
      log: new AgentLog(join(k.layout.logsDir, `${name}.log`), k.config.agentLogMaxBytes),
      timeout: null,
      restartTimer: null,
      exited: Promise.resolve(),
      finished: false,
      pidNamespace: false,
    };
    this.#agents.set(agent.id, agent);
    try {
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
    const inState = isInside(real, this.kernel.layout.root) && !isInside(real, caller.workspace);
    if (
      caller.permissions.level !== "unrestricted" && inState || !mayRead(caller.permissions, real)
    ) {
      throw permissionDenied(`cannot spawn ${abs}: you may not read it`);
    }
    if (real.includes(",")) {
      throw new SyscallError("INVALID_MSG", `script path ${real} contains a comma; rename it`);
    }
    return real;
  }

  #generateName(): string {
    for (;;) {
      const name = `agent-${++this.#nameCounter}`;
      if (!this.kernel.identities.byName(name)) return name;
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
      script: agent.script,
      extraDenied: sshAgentDir(),
      outsideState: everythingBut(k.layout.root, (dir) => {
        try {
          return [...Deno.readDirSync(dir)].map((e) => e.name);
        } catch {
          return [];
        }
      }),
    };
  }

  /** What the OS layer masks for `agent` (existing paths only). */
  #mounts(agent: Agent): AgentMounts {
    const k = this.kernel;
    const p = agent.identity.permissions;
    const keep = [agent.identity.workspace, agent.runDir];
    const candidates = [
      ...p.filesystem.blocked,
      k.config.socket,
      k.layout.kernelDir,
      k.layout.logsDir,
      k.layout.runDir,
      k.layout.workspacesDir,
      ...sshAgentDir(),
    ].filter((x) => isAbsolute(x) && !HIDDEN_ROOTS.some((h) => isInside(x, h)));
    const maskDirs: string[] = [];
    const maskFiles: string[] = [];
    for (const path of [...new Set(candidates)]) {
      if (keep.some((own) => isInside(own, path) ? false : isInside(path, own))) continue;
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(path);
      } catch {
        continue; // nothing there to hide
      }
      if (info.isSymlink) continue; // a mount would follow it; Deno's deny covers the path
      (info.isDirectory ? maskDirs : maskFiles).push(path);
    }
    const masked = (x: string) => maskDirs.some((d) => isInside(x, d));
    return {
      maskDirs,
      maskFiles: maskFiles.filter((f) => !masked(f)),
      keep,
      keepReadOnly: [agent.script].filter((s) => masked(s) && !keep.some((o) => isInside(s, o))),
      noNetwork: p.network.length === 0,
      confine: p.level !== "unrestricted",
      // Below standard, nothing outside the agent's own paths is writable at the OS level
      // either (a symlink in its workspace leads nowhere writable).
      readOnlyRoot: p.level !== "unrestricted" && p.level !== "standard",
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
      AGENTOS_SCRIPT: agent.script,
    };
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
    agent.log.note(`start agent ${agent.id} "${agent.name}" pid ${child.pid} level ${spec.level}`);
    this.#setState(agent, "running");
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      try {
        for await (const chunk of stream) agent.log.write(chunk);
      } catch { /* stream broke: the process is gone */ }
    };
    const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
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
      this.#onExit(agent, status);
    });
    k.log.debug("agent started", { id: agent.id, name: agent.name, pid: child.pid });
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
      try {
        this.#launch(agent);
      } catch (err) {
        this.#finish(agent, "failed", null, `restart failed: ${(err as Error).message}`);
      }
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

/** True if `permissions` lets its holder read `path` (resolved), by grants and blocks. */
export function mayRead(permissions: Permissions, path: string): boolean {
  if (permissions.level === "unrestricted") return true;
  if (permissions.filesystem.blocked.some((b) => isInside(path, b))) return false;
  return permissions.filesystem.read.some((r) => isInside(path, r));
}
