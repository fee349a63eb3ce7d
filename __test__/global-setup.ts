// One moto S3 server (pip `moto[server]`) on loopback for the whole vitest
// run: the suites that run on every backend reach it through
// `inject('memwalS3')`. Started before the first test file, killed after the
// last one (and when the vitest process exits, whatever the reason).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { connect, createServer } from 'node:net'

/** Where the shared S3 server listens, and the bucket the suites write to. */
export interface S3TestServer {
  endpoint: string
  bucket: string
  region: string
  accessKeyId: string
  secretAccessKey: string
}

declare module 'vitest' {
  export interface ProvidedContext {
    memwalS3: S3TestServer
  }
}

const BUCKET = 'memwal-ts-test'

/** The part of vitest's TestProject we use (vitest/node is ESM-only for tsc here). */
interface Project {
  provide(key: 'memwalS3', value: S3TestServer): void
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no free port')
  return address.port
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Start moto and wait until it accepts connections; its last output explains a failure. */
async function startMoto(port: number): Promise<ChildProcess> {
  const moto = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  // moto logs every request: keep draining stderr, remember only the tail.
  let tail = ''
  moto.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000)
  })
  let exited: string | undefined
  moto.once('exit', (code, signal) => {
    exited = `moto exited (code ${code}, signal ${signal}): ${tail}`
  })
  moto.once('error', (error) => {
    exited = `python3 -m moto.server could not start: ${error.message}`
  })
  const deadline = Date.now() + 60_000
  while (!(await accepts(port))) {
    if (exited) throw new Error(exited)
    if (Date.now() > deadline) {
      moto.kill()
      throw new Error(`moto did not accept connections within 60 s: ${tail}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return moto
}

/**
 * Create the bucket and check what fencing on S3 rests on: a second
 * `If-None-Match: *` create of one key is refused (412) and leaves the first
 * object in place. Signed requests through boto3 (installed with moto):
 * moto answers unsigned ones with 403.
 */
function prepareBucket(endpoint: string): void {
  const script = `
import sys, boto3, botocore
endpoint, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1',
                  aws_access_key_id='memwal', aws_secret_access_key='memwal-test-secret')
s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key='conformance', Body=b'first', IfNoneMatch='*')
try:
    s3.put_object(Bucket=bucket, Key='conformance', Body=b'second', IfNoneMatch='*')
    sys.exit('the S3 server accepted a second conditional create')
except botocore.exceptions.ClientError as e:
    status = e.response['ResponseMetadata']['HTTPStatusCode']
    if status != 412:
        sys.exit(f'a second conditional create failed with HTTP {status}, not 412')
body = s3.get_object(Bucket=bucket, Key='conformance')['Body'].read()
if body != b'first':
    sys.exit(f'a refused create replaced the object: {body!r}')
`
  try {
    execFileSync('python3', ['-c', script, endpoint, BUCKET], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim()
    throw new Error(`S3 test bucket on moto: ${stderr.split('\n').pop() || String(error)}`)
  }
}

export default async function setup(project: Project): Promise<() => Promise<void>> {
  const port = await freePort()
  const moto = await startMoto(port)
  const stop = () => {
    if (moto.exitCode === null && moto.signalCode === null) moto.kill()
  }
  process.once('exit', stop)
  try {
    const endpoint = `http://127.0.0.1:${port}`
    prepareBucket(endpoint)
    project.provide('memwalS3', {
      endpoint,
      bucket: BUCKET,
      region: 'us-east-1',
      accessKeyId: 'memwal',
      secretAccessKey: 'memwal-test-secret',
    })
  } catch (error) {
    stop()
    throw error
  }
  return async () => {
    process.removeListener('exit', stop)
    if (moto.exitCode !== null || moto.signalCode !== null) return
    const exited = new Promise((resolve) => moto.once('exit', resolve))
    stop()
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
  }
}
