#!/usr/bin/env node
// kafkajs compatibility check, run by testkit/kafkajs_test.go:
//
//   node testkit/kafkajs/check.js <host:port> <topic>
//
// It drives the broker with kafkajs (a pure-JavaScript client that shares no
// code with franz-go or librdkafka) and prints ONE JSON summary on stdout;
// the Go test asserts on it. kafkajs's own log goes to stderr.
//
//  1. admin: createTopics (3 partitions, waitForLeaders), fetchTopicMetadata;
//  2. an idempotent producer (acks=-1, one request in flight) sends 200 keyed
//     records with headers and explicit timestamps, in 4 sends of 50;
//  3. a plain producer sends one gzip batch of 50 (one of them a tombstone);
//  4. every record's partition and offset are derived from the produce
//     responses (per partition, base offset + position in the send);
//  5. admin.fetchTopicOffsets: low and high watermarks per partition;
//  6. kafkajs has no group-less consumer, so the records are read back twice:
//     first with the Fetch its consumer sends (same encoder and record-batch
//     decoder), issued through kafkajs's internal cluster and broker objects,
//     which needs no group APIs; then by a group consumer from the
//     beginning. A broker without the group APIs makes kafkajs fail
//     with KafkaJSServerDoesNotSupportApiKey before anything is sent; that is
//     reported as groups.unsupported, not as a failure of the script.
//
// Bytes (keys, values, header values) are base64 in the JSON, which Go's
// encoding/json decodes into []byte. Every request kafkajs sent and got an
// answer to is tallied as "ApiName vN" in requests, so the summary shows the
// versions kafkajs negotiated.
//
// Exit status: 0 once a summary is printed (the Go test judges it), 1 if
// the script itself failed (the summary's error says how), 2 for bad usage.

'use strict'

const { CompressionTypes, Partitioners } = require('kafkajs')
const { harness, describeError, kafkajsVersion } = require('./harness')

const [addr, topic] = process.argv.slice(2)
if (!addr || !topic) {
  process.stderr.write('usage: node check.js <host:port> <topic>\n')
  process.exit(2)
}

const PARTITIONS = 3
const IDEMPOTENT_RECORDS = 200
const IDEMPOTENT_SENDS = 4
const GZIP_RECORDS = 50
const KEYS = 10
const CONSUME_WITHIN_MS = 15000
const BASE_TS = 1700000000000 // explicit CreateTime timestamps, checked on the way back

// kafkajs runs at DEBUG so that one debug entry is seen: a group consumer
// on a broker without FindCoordinator fails with KafkaJSGroupCoordinatorNotFound,
// and only the debug entry "Tried to find group coordinator" carries the
// underlying KafkaJSServerDoesNotSupportApiKey (which API is missing).
let unsupportedSeen = null // set while the group consumer runs
let consuming = false
const { summary, kafka, count, tally, step, run } = harness({
  addr,
  clientId: 'chronik-kafkajs-check',
  summary: {
    topic,
    partitions: null, // from fetchTopicMetadata: [{partition, leader}]
    produced: [], // {key, value, headers, timestamp, partition, offset, batch}
    offsets: null, // from fetchTopicOffsets: [{partition, low, high}]
    advertised: null, // ApiVersions as kafkajs saw it: {apiKey: [min, max]}
    fetched: null, // read back with kafkajs's Fetch, no group: records as in produced
    groups: null, // {groupId, unsupported, error, consumed}
  },
  onLog: extra => {
    if (consuming && extra.error && extra.error.name === 'KafkaJSServerDoesNotSupportApiKey' && !unsupportedSeen) {
      unsupportedSeen = { apiKey: extra.error.apiKey, apiName: extra.error.apiName, message: extra.error.message }
    }
  },
})

const b64 = buf => (buf == null ? null : Buffer.from(buf).toString('base64'))

// flatHeaders turns kafkajs's header object ({key: value | value[]}) into
// the wire's ordered list of {key, value}.
function flatHeaders(h) {
  const out = []
  for (const [key, v] of Object.entries(h || {})) {
    for (const one of Array.isArray(v) ? v : [v]) out.push({ key, value: b64(one) })
  }
  return out
}

function record(i, batch, tombstone) {
  const key = `key-${i % KEYS}`
  return {
    key,
    value: tombstone ? null : `${batch} record ${i}: ${'x'.repeat(i % 17)}`,
    timestamp: String(BASE_TS + i),
    headers: {
      'h-index': String(i),
      'h-batch': batch,
      'h-binary': Buffer.from([0, 1, 2, 0xfe, 0xff, i & 0xff]),
      'h-multi': ['first', 'second'],
    },
  }
}

// sendAndPlace sends messages and records each one's partition (kafkajs's
// own partitioner, asked the same way the producer asks it) and offset (the
// partition's base offset from the produce response + its place among the
// send's records for that partition: kafkajs keeps their order).
async function sendAndPlace(producer, partitioner, partitionMetadata, batch, messages, extra) {
  const placed = messages.map(message => ({
    message,
    partition: partitioner({ topic, partitionMetadata, message }),
  }))
  const meta = await producer.send({ topic, acks: -1, messages, ...extra })
  const base = {}
  for (const m of meta) {
    if (m.topicName !== topic || m.errorCode !== 0) {
      throw new Error(`produce response ${JSON.stringify(m)}`)
    }
    base[m.partition] = BigInt(m.baseOffset)
  }
  const next = {}
  for (const { message, partition } of placed) {
    if (base[partition] === undefined) {
      throw new Error(`no produce response for partition ${partition} (got ${JSON.stringify(meta)})`)
    }
    const offset = base[partition] + (next[partition] || 0n)
    next[partition] = (next[partition] || 0n) + 1n
    summary.produced.push({
      batch,
      partition,
      offset: Number(offset),
      key: b64(message.key),
      value: b64(message.value),
      timestamp: message.timestamp,
      headers: flatHeaders(message.headers),
    })
  }
}

// toRecord turns a kafkajs record (consumer or fetch decoder) into the
// summary's form.
const toRecord = (partition, m) => ({
  partition,
  offset: Number(m.offset),
  key: b64(m.key),
  value: b64(m.value),
  timestamp: m.timestamp,
  headers: flatHeaders(m.headers),
})

// directFetch reads every partition from offset 0 to its high watermark
// with kafkajs's Broker.fetch: the Fetch request (v11 at most) and response
// decoder its consumer uses, without a group. The cluster factory is
// private to kafkajs; with kafkajs pinned at 2.2.4 it is stable, and a
// change fails loudly here.
async function directFetch(high) {
  const sym = Object.getOwnPropertySymbols(kafka).find(x => x.description === 'private:Kafka:createCluster')
  if (!sym) throw new Error(`kafkajs ${kafkajsVersion}: no private:Kafka:createCluster, the direct fetch needs updating`)
  const Emitter = require('kafkajs/src/instrumentation/emitter')
  const emitter = new Emitter()
  emitter.addListener('network.request', ({ payload }) => count(payload))
  const cluster = kafka[sym]({ allowAutoTopicCreation: false, instrumentationEmitter: emitter })
  await cluster.connect()
  try {
    await cluster.addTargetTopic(topic)
    const parts = Object.keys(high).map(Number)
    const byLeader = cluster.findLeaderForPartitions(topic, parts)
    const out = []
    for (const [nodeId, leaderParts] of Object.entries(byLeader)) {
      const broker = await cluster.findBroker({ nodeId })
      summary.advertised = Object.fromEntries(
        Object.entries(broker.versions).map(([k, v]) => [k, [v.minVersion, v.maxVersion]])
      )
      const next = Object.fromEntries(leaderParts.map(p => [p, 0]))
      for (let round = 0; leaderParts.some(p => next[p] < high[p]); round++) {
        if (round >= 50) throw new Error(`no progress after 50 fetches: at ${JSON.stringify(next)}, high ${JSON.stringify(high)}`)
        const want = leaderParts.filter(p => next[p] < high[p])
        const resp = await broker.fetch({
          replicaId: -1,
          isolationLevel: 1, // READ_COMMITTED, the kafkajs consumer's default
          maxWaitTime: 100,
          minBytes: 1,
          maxBytes: 1 << 20,
          topics: [{ topic, partitions: want.map(p => ({ partition: p, fetchOffset: String(next[p]), maxBytes: 1 << 20 })) }],
        })
        for (const t of resp.responses) {
          for (const pr of t.partitions) {
            if (t.topicName !== topic || pr.errorCode !== 0) {
              throw new Error(`fetch response ${t.topicName}[${pr.partition}]: error code ${pr.errorCode}`)
            }
            for (const m of pr.messages) {
              // A batch may start before the fetch offset; control records
              // are not data.
              if (m.isControlRecord || Number(m.offset) < next[pr.partition]) continue
              out.push(toRecord(pr.partition, m))
              next[pr.partition] = Number(m.offset) + 1
            }
          }
        }
      }
    }
    summary.fetched = out
  } finally {
    await cluster.disconnect()
  }
}

async function consume(groupId, want) {
  const g = { groupId, unsupported: null, error: null, crash: null, consumed: [] }
  summary.groups = g
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000, restartOnFailure: async () => false },
  })
  tally(consumer)
  let done
  const finished = new Promise(resolve => (done = resolve))
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    g.crash = describeError(payload.error)
    done()
  })
  consuming = true
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        g.consumed.push(toRecord(partition, message))
        if (g.consumed.length >= want) done()
      },
    })
    const timer = setTimeout(done, CONSUME_WITHIN_MS)
    await finished
    clearTimeout(timer)
  } finally {
    await consumer.disconnect().catch(e => {
      g.error = g.error || describeError(e)
    })
    consuming = false
  }
  // kafkajs checks ApiVersions before sending: an API the broker does not
  // advertise fails there, nothing sent, and the log entry says which.
  if (unsupportedSeen) {
    g.unsupported = unsupportedSeen
  } else if (g.crash) {
    g.error = g.crash
  } else if (g.consumed.length < want) {
    g.error = { name: 'Timeout', message: `consumed ${g.consumed.length} of ${want} records within ${CONSUME_WITHIN_MS} ms` }
  }
}

async function main() {
  const admin = kafka.admin()
  tally(admin)
  await step('admin connect', () => admin.connect())
  try {
    await step('createTopics', async () => {
      await admin.createTopics({
        topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
        waitForLeaders: true,
        timeout: 10000,
      })
    })
    const partitionMetadata = await step('fetchTopicMetadata', async () => {
      const md = await admin.fetchTopicMetadata({ topics: [topic] })
      const t = md.topics.find(x => x.name === topic)
      if (!t) throw new Error(`topic ${topic} missing from metadata ${JSON.stringify(md)}`)
      summary.partitions = t.partitions.map(p => ({ partition: p.partitionId, leader: p.leader }))
      return t.partitions
    })
    const partitioner = Partitioners.DefaultPartitioner()

    const idem = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    })
    tally(idem)
    await step('idempotent produce', async () => {
      await idem.connect()
      try {
        const per = IDEMPOTENT_RECORDS / IDEMPOTENT_SENDS
        for (let s = 0; s < IDEMPOTENT_SENDS; s++) {
          const msgs = []
          for (let i = s * per; i < (s + 1) * per; i++) msgs.push(record(i, 'idempotent', false))
          await sendAndPlace(idem, partitioner, partitionMetadata, 'idempotent', msgs, {})
        }
      } finally {
        await idem.disconnect()
      }
    })

    const plain = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
    tally(plain)
    await step('gzip produce', async () => {
      await plain.connect()
      try {
        const msgs = []
        for (let i = IDEMPOTENT_RECORDS; i < IDEMPOTENT_RECORDS + GZIP_RECORDS; i++) {
          msgs.push(record(i, 'gzip', i === IDEMPOTENT_RECORDS + 7))
        }
        await sendAndPlace(plain, partitioner, partitionMetadata, 'gzip', msgs, {
          compression: CompressionTypes.GZIP,
        })
      } finally {
        await plain.disconnect()
      }
    })

    await step('fetchTopicOffsets', async () => {
      const offs = await admin.fetchTopicOffsets(topic)
      summary.offsets = offs
        .map(o => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }))
        .sort((a, b) => a.partition - b.partition)
    })
  } finally {
    await admin.disconnect()
  }

  // A failed step is in the summary; the group consumer still runs.
  await step('fetch without a group', () =>
    directFetch(Object.fromEntries(summary.offsets.map(o => [o.partition, o.high])))
  ).catch(() => {})
  await step('group consume', () => consume(`${topic}-group`, summary.produced.length))
}

run(main, { script: 'check.js', withinMs: 40000 })
