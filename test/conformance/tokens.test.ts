/** API tokens, on every store: stored by hash only, unique live names, revocation. */
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { dropStore, freshStoreUrl, storeKinds } from '../helpers/stores.ts';

const T0 = 1_700_000_000_000;

describe.each(storeKinds)('token store: %s', (kind) => {
  let url: string;
  let store: Store;
  const open = async () => {
    url = freshStoreUrl(kind);
    store = await openStore(url);
    await store.migrate();
    return store.tokens;
  };
  afterEach(async () => {
    await store?.close();
    await dropStore(url);
  });

  it('finds a live token by its hash, and no longer once it is revoked', async () => {
    const tokens = await open();
    expect(await tokens.countLiveTokens()).toBe(0);
    const t = await tokens.createToken({ name: 'ci', role: 'operator', hash: 'h-ci', now: T0 });
    expect(t).toMatchObject({ name: 'ci', role: 'operator', createdAt: T0, lastUsedAt: null, revokedAt: null });
    expect(await tokens.findTokenByHash('h-ci')).toMatchObject({ id: t.id, role: 'operator' });
    expect(await tokens.findTokenByHash('h-other')).toBeNull();
    await tokens.touchToken(t.id, T0 + 5);
    expect((await tokens.findTokenByHash('h-ci'))!.lastUsedAt).toBe(T0 + 5);
    expect(await tokens.revokeToken('ci', T0 + 10)).toBe(true);
    expect(await tokens.revokeToken('ci', T0 + 11)).toBe(false);
    expect(await tokens.findTokenByHash('h-ci')).toBeNull();
    expect(await tokens.countLiveTokens()).toBe(0);
    expect(await tokens.listTokens()).toEqual([expect.objectContaining({ name: 'ci', revokedAt: T0 + 10 })]);
  });

  it('refuses a second live token of the same name, and allows the name again after revocation', async () => {
    const tokens = await open();
    await tokens.createToken({ name: 'alice', role: 'viewer', hash: 'h1', now: T0 });
    await expect(tokens.createToken({ name: 'alice', role: 'admin', hash: 'h2', now: T0 })).rejects.toMatchObject({ code: 'validation', field: 'name' });
    await tokens.revokeToken('alice', T0 + 1);
    const again = await tokens.createToken({ name: 'alice', role: 'admin', hash: 'h3', now: T0 + 2 });
    expect(again.role).toBe('admin');
    expect(await tokens.countLiveTokens()).toBe(1);
    expect((await tokens.listTokens()).map((t) => t.name)).toEqual(['alice', 'alice']);
  });

  it('refuses a role outside viewer, operator and admin', async () => {
    const tokens = await open();
    await expect(tokens.createToken({ name: 'x', role: 'root' as never, hash: 'h', now: T0 })).rejects.toThrow();
    expect(await tokens.countLiveTokens()).toBe(0);
  });
});
