#!/usr/bin/env node
// kafkajs transactions check, run by testkit/txn_kafkajs_test.go:
//
//   node testkit/kafkajs/txn.js <host:port> <out-topic> <in-topic> <group> <transactional-id>
//
// Both topics exist already (one partition each). A kafkajs transactional
// producer (idempotent, one request in flight) runs three transactions on
// <out-topic>, each also committing an offset of <in-topic> partition 0
// for <group> with sendOffsets (AddOffsetsToTxn + TxnOffsetCommit):
//
//   txn1: 10 records "txn1-i", sendOffsets 5, commit
//   txn2:  7 records "txn2-i", sendOffsets 9, abort
//   txn3:  3 records "txn3-i", sendOffsets 8, commit
//
// After each transaction the group's committed offset is read back with
// admin.fetchOffsets (offsets commit asynchronously with the markers, so a
// committed one is waited for, up to 10 s). Then a kafkajs group consumer
// (kafkajs's default isolation: read_committed) reads <out-topic> from the
// beginning until it has 13 records or 15 s have passed.
//
// ONE JSON summary goes to stdout; the Go test judges it. Exit status: 0
// once a summary is printed, 1 if the script itself failed (the summary's
// error says how), 2 for bad usage.

'use strict'

const { harness } = require('./harness')

const [addr, outTopic, inTopic, groupId, transactionalId] = process.argv.slice(2)
if (!addr || !outTopic || !inTopic || !groupId || !transactionalId) {
  process.stderr.write('usage: node txn.js <host:port> <out-topic> <in-topic> <group> <transactional-id>\n')
  process.exit(2)
}

const TXNS = [
  { name: 'txn1', records: 10, offset: 5, commit: true },
  { name: 'txn2', records: 7, offset: 9, commit: false },
  { name: 'txn3', records: 3, offset: 8, commit: true },
]
const CONSUME_WITHIN_MS = 15000
const OFFSET_WITHIN_MS = 10000

const { summary, kafka, tally, step, run } = harness({
  addr,
  clientId: 'chronik-kafkajs-txn',
  summary: {
    txns: [], // {name, commit, sent: [{partition, baseOffset}], offsetAfter}
    consumed: null, // values the read_committed group consumer received, in order
  },
})

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// committedOffset is the group's committed offset of inTopic/0 (-1: none).
async function committedOffset(admin) {
  const res = await admin.fetchOffsets({ groupId, topics: [inTopic] })
  for (const t of res) {
    for (const p of t.partitions) {
      if (p.partition === 0) return Number(p.offset)
    }
  }
  return -1
}

async function main() {
  const admin = kafka.admin()
  tally(admin)
  const producer = kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: 30000,
  })
  tally(producer)
  await step('connect', async () => {
    await admin.connect()
    await producer.connect()
  })
  try {
    let lastCommitted = -1
    for (const t of TXNS) {
      const entry = { name: t.name, commit: t.commit, sent: [], offsetAfter: null }
      summary.txns.push(entry)
      await step(t.name, async () => {
        const txn = await producer.transaction()
        try {
          const messages = []
          for (let i = 0; i < t.records; i++) messages.push({ key: `k-${i}`, value: `${t.name}-${i}` })
          const meta = await txn.send({ topic: outTopic, acks: -1, messages })
          entry.sent = meta.map(m => ({ partition: m.partition, baseOffset: Number(m.baseOffset), errorCode: m.errorCode }))
          await txn.sendOffsets({
            consumerGroupId: groupId,
            topics: [{ topic: inTopic, partitions: [{ partition: 0, offset: String(t.offset) }] }],
          })
          if (t.commit) await txn.commit()
          else await txn.abort()
        } catch (e) {
          if (txn.isActive()) await txn.abort().catch(() => {})
          throw e
        }
      })
      await step(`${t.name} offset`, async () => {
        // A commit's offset shows once its marker is applied: wait for
        // it. An abort leaves the last committed one.
        const want = t.commit ? t.offset : lastCommitted
        const deadline = Date.now() + OFFSET_WITHIN_MS
        let got = await committedOffset(admin)
        while (got !== want && Date.now() < deadline) {
          await sleep(100)
          got = await committedOffset(admin)
        }
        entry.offsetAfter = got
        if (t.commit) lastCommitted = t.offset
      })
    }
  } finally {
    await producer.disconnect().catch(() => {})
  }

  await step('consume read_committed', async () => {
    const consumer = kafka.consumer({ groupId: `${groupId}-reader`, maxWaitTimeInMs: 200 })
    tally(consumer)
    const consumed = []
    summary.consumed = consumed
    const want = TXNS.filter(t => t.commit).reduce((n, t) => n + t.records, 0)
    await consumer.connect()
    try {
      await consumer.subscribe({ topic: outTopic, fromBeginning: true })
      let finish
      const done = new Promise(resolve => { finish = resolve })
      await consumer.run({
        eachMessage: async ({ message }) => {
          consumed.push(message.value == null ? null : message.value.toString())
          if (consumed.length >= want) finish()
        },
      })
      await Promise.race([done, sleep(CONSUME_WITHIN_MS)])
      // Anything more (an aborted record wrongly delivered) would arrive
      // right behind: give it a moment.
      await sleep(500)
    } finally {
      await consumer.disconnect().catch(() => {})
    }
  })
  await admin.disconnect().catch(() => {})
}

run(main)
