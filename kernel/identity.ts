/**
 * Identities: who is on the other end of a connection. Main-socket clients get a fresh
 * identity per connection; every connection on an agent's private socket is that agent.
 * @module
 */
import { join } from "node:path";
import { defaultPermissions, type Level, type Permissions } from "../sandbox/permissions.ts";

/** What kind of peer an identity is. */
export type IdentityKind = "client" | "agent";

/** One identity known to the kernel. */
export interface Identity {
  /** Kernel-assigned id, uint32 from 1, shared by clients and agents. */
  readonly id: number;
  readonly kind: IdentityKind;
  /** Registered or spawn name, unique among live identities; null if none. */
  name: string | null;
  permissions: Permissions;
  /** The identity that spawned this one (agents), or null. */
  readonly parentId: number | null;
  /** Absolute path of the identity's workspace directory. */
  readonly workspace: string;
}

/** Table of live identities, with id allocation and parent links. */
export class IdentityTable {
  #nextId = 1;
  #byId = new Map<number, Identity>();
  #byName = new Map<string, number>();
  readonly #runTag = Date.now().toString(36);

  constructor(
    private readonly workspacesDir: string,
    private readonly blocked: () => readonly string[],
  ) {}

  /** Allocate the next id (wrapping within uint32, skipping 0 and live ids). */
  allocateId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = this.#nextId >= 0xffff_ffff ? 1 : this.#nextId + 1;
      if (!this.#byId.has(id)) return id;
    }
  }

  /** Create and register a new identity. */
  create(options: {
    kind: IdentityKind;
    level: Level;
    name?: string | null;
    parentId?: number | null;
    id?: number;
    workspaceName?: string;
    network?: readonly string[];
  }): Identity {
    const id = options.id ?? this.allocateId();
    // Ids restart at 1 with every kernel run; the run tag keeps a new client from inheriting a
    // workspace that an earlier run's client of the same id left behind.
    const workspace = join(
      this.workspacesDir,
      options.workspaceName ?? `${options.kind}-${id}-${this.#runTag}`,
    );
    const identity: Identity = {
      id,
      kind: options.kind,
      name: options.name ?? null,
      parentId: options.parentId ?? null,
      workspace,
      permissions: defaultPermissions(options.level, {
        workspace,
        blocked: this.blocked(),
        network: options.network,
      }),
    };
    this.#byId.set(id, identity);
    if (identity.name !== null && !this.claimName(id, identity.name)) {
      this.#byId.delete(id);
      throw new Error(`name "${identity.name}" is taken`);
    }
    return identity;
  }

  /**
   * Give identity `id` the unique name `name` (releasing any name it had). Returns false if
   * another live identity holds it.
   */
  claimName(id: number, name: string): boolean {
    const identity = this.#byId.get(id);
    if (!identity) return false;
    const holder = this.#byName.get(name);
    if (holder !== undefined && holder !== id) return false;
    if (identity.name !== null && this.#byName.get(identity.name) === id) {
      this.#byName.delete(identity.name);
    }
    this.#byName.set(name, id);
    identity.name = name;
    return true;
  }

  /** The live identity holding `name`, if any. */
  byName(name: string): Identity | undefined {
    const id = this.#byName.get(name);
    return id === undefined ? undefined : this.#byId.get(id);
  }

  /** Look an identity up by id. */
  get(id: number): Identity | undefined {
    return this.#byId.get(id);
  }

  /** Forget an identity. */
  remove(id: number): void {
    const identity = this.#byId.get(id);
    if (identity?.name != null && this.#byName.get(identity.name) === id) {
      this.#byName.delete(identity.name);
    }
    this.#byId.delete(id);
  }

  /** True if `ancestorId` spawned `id`, directly or through descendants. */
  isDescendant(id: number, ancestorId: number): boolean {
    let cur = this.#byId.get(id);
    for (let hops = 0; cur && hops < 10_000; hops++) {
      if (cur.parentId === null) return false;
      if (cur.parentId === ancestorId) return true;
      cur = this.#byId.get(cur.parentId);
    }
    return false;
  }

  /** Every live identity. */
  all(): IterableIterator<Identity> {
    return this.#byId.values();
  }

  /** Number of live identities. */
  get size(): number {
    return this.#byId.size;
  }
}
