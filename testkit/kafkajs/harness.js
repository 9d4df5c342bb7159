// What the kafkajs scripts (check.js, txn.js) share: the kafkajs client,
// its log on stderr, the JSON summary on stdout with the steps and the
// tally of requests, and how the script ends.
//
//   const { summary, kafka, tally, step, run } = harness({ addr, clientId, summary: {...}, onLog })
//
// summary is the script's own fields; the harness adds kafkajs, node,
// steps ({name, ms, error}), requests ("ApiName vN" -> count) and error.
// onLog, if given, sees every kafkajs log entry's fields (error, ...)
// before the level filter.

'use strict'

const { Kafka, logLevel } = require('kafkajs')
const kafkajsVersion = require('kafkajs/package.json').version

// describeError keeps what says which request failed and why: kafkajs wraps
// protocol errors (type, code) in retry errors (cause chains).
function describeError(e) {
  if (!e) return null
  const d = { name: e.name, message: e.message }
  for (const f of ['type', 'code', 'retriable', 'apiKey', 'apiName', 'broker', 'retryCount']) {
    if (e[f] !== undefined) d[f] = e[f]
  }
  if (e.cause) d.cause = describeError(e.cause)
  if (e.name !== 'KafkaJSProtocolError' && e.stack) d.stack = e.stack.split('\n').slice(0, 6).join('\n')
  return d
}

function harness({ addr, clientId, summary: fields, onLog }) {
  const summary = {
    kafkajs: kafkajsVersion,
    node: process.version,
    steps: [],
    requests: {},
    ...fields,
    error: null,
  }

  // kafkajs logs through this: stderr only, so stdout stays one JSON
  // document. kafkajs runs at DEBUG so that onLog sees every entry;
  // entries above KAFKAJS_LOG_LEVEL (default WARN) are not printed.
  const printLevel = logLevel[(process.env.KAFKAJS_LOG_LEVEL || 'WARN').toUpperCase()] ?? logLevel.WARN
  const logCreator = () => ({ namespace, level, label, log }) => {
    const { message, ...extra } = log
    if (onLog) onLog(extra)
    if (level > printLevel) return
    if (extra.error instanceof Error) extra.error = describeError(extra.error)
    process.stderr.write(`[kafkajs ${label} ${namespace}] ${message} ${JSON.stringify(extra)}\n`)
  }

  const kafka = new Kafka({
    clientId,
    brokers: [addr],
    logLevel: logLevel.DEBUG,
    logCreator,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    // Few retries: against a broker without an API the script needs, a
    // client fails within seconds rather than retrying for minutes.
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
  })

  // count tallies one answered request (a network.request event's payload).
  const count = payload => {
    const k = `${payload.apiName} v${payload.apiVersion}`
    summary.requests[k] = (summary.requests[k] || 0) + 1
  }
  const tally = client => client.on(client.events.REQUEST, ({ payload }) => count(payload))

  // step runs fn as a named step of the summary, timed, its error kept.
  async function step(name, fn) {
    const start = Date.now()
    const s = { name, ms: 0, error: null }
    summary.steps.push(s)
    try {
      return await fn()
    } catch (e) {
      s.error = describeError(e)
      throw e
    } finally {
      s.ms = Date.now() - start
    }
  }

  // finish prints the summary and exits once stdout has taken it all: stdout
  // is a pipe, written asynchronously, and process.exit would cut it short.
  function finish(code) {
    process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(code))
  }

  // run runs main and ends the script: 0 once it returned, 1 if it threw
  // (the summary's error says how) or, with withinMs, did not finish in
  // time (nothing may outlive the Go test's deadline unnoticed).
  function run(main, { script, withinMs } = {}) {
    const watchdog =
      withinMs &&
      setTimeout(() => {
        summary.error = { name: 'Watchdog', message: `${script} did not finish within ${withinMs / 1000} s` }
        finish(1)
      }, withinMs)
    main().then(
      () => {
        clearTimeout(watchdog)
        finish(0)
      },
      e => {
        clearTimeout(watchdog)
        summary.error = describeError(e)
        finish(1)
      }
    )
  }

  return { summary, kafka, count, tally, step, run }
}

module.exports = { harness, describeError, kafkajsVersion }
