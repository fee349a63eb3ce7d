// The binding sets `code` and `shardId` as properties of the errors it
// throws and rejects with; the message is the core message alone, so
// nothing has to be parsed out of it (ts/errors.ts reads the properties).
import { Field, Int64, Schema, Table, vectorFromArray } from 'apache-arrow'
import { describe, expect, it } from 'vitest'
import {
  defaultWriterOptions,
  openShardReader as nativeOpenShardReader,
  openShardWriter as nativeOpenShardWriter,
} from '../index.js'
import { batchesToIPC, schemaToIPC } from '../ts/arrow.js'
import { toMemWalError } from '../ts/errors.js'
import { memoryRoot } from './helpers.js'

const SCHEMA = new Schema([new Field('id', new Int64(), false)])

async function caught(act: () => unknown): Promise<Error & { code?: unknown; shardId?: unknown }> {
  try {
    await act()
  } catch (error) {
    expect(error).toBeInstanceOf(Error)
    return error as Error & { code?: unknown; shardId?: unknown }
  }
  throw new Error('expected a failure')
}

describe('errors from the native addon', () => {
  it('a synchronous throw carries code as a property and a message without a prefix', async () => {
    const error = await caught(() => nativeOpenShardReader(memoryRoot('sync'), 'not-a-uuid'))
    expect(error.code).toBe('INVALID_INPUT')
    expect(error.shardId).toBeUndefined()
    expect(error.message).not.toMatch(/^\[/)
    expect(toMemWalError(error).code).toBe('INVALID_INPUT')
  })

  it('a rejected promise carries code and shardId as properties', async () => {
    const shardId = crypto.randomUUID()
    const error = await caught(() => nativeOpenShardReader(memoryRoot('async'), shardId))
    expect(error.code).toBe('NOT_FOUND')
    expect(error.shardId).toBe(shardId)
    const typed = toMemWalError(error)
    expect([typed.code, typed.shardId, typed.message]).toEqual([
      'NOT_FOUND',
      shardId,
      error.message,
    ])
  })

  it("a put refused on the caller's thread names the writer's shard", async () => {
    const writer = await nativeOpenShardWriter(memoryRoot('put'), schemaToIPC(SCHEMA), null, {
      ...defaultWriterOptions(),
      enableMemtable: false,
    })
    const nulls = new Table({ id: vectorFromArray([1n, null], new Int64()) })
    const error = await caught(() => writer.put(batchesToIPC(nulls.batches), false))
    expect(error.code).toBe('SCHEMA_MISMATCH')
    expect(error.shardId).toBe(writer.shardId)
    expect(error.message).toContain("column 'id' at row 1 is null")
    await writer.close()
  })

  it('anything without a memwal code is INTERNAL, keeping the original as cause', () => {
    const foreign = Object.assign(new Error('boom'), { code: 'ENOENT' })
    const typed = toMemWalError(foreign)
    expect([typed.code, typed.message, typed.cause]).toEqual(['INTERNAL', 'boom', foreign])
  })
})
