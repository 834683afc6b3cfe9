/**
 * Runs once before the container suites: checks that a Docker-compatible engine answers at
 * DOCKER_HOST, then builds the image from the repository's Dockerfile as `easeemail:<version>`.
 */
import { IMAGE, report, run } from './support';

export default async function globalSetup(): Promise<void> {
  const engine = await run('docker', ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 30_000 });
  if (engine.code !== 0) {
    throw new Error(
      `no container engine answers at DOCKER_HOST=${process.env.DOCKER_HOST ?? '(unset)'}: ${engine.stderr.trim()}\n` +
        'Run the suite with test/container/run.sh (it starts ../shared/container-lab), or point DOCKER_HOST at a Docker engine.',
    );
  }
  const build = await run('docker', ['build', '-t', IMAGE, '.'], { timeoutMs: 15 * 60_000 });
  if (build.code !== 0) throw new Error(`docker build failed after ${build.ms} ms\n${build.stdout.slice(-6000)}\n${build.stderr.slice(-6000)}`);
  report(`docker build -t ${IMAGE} . took ${(build.ms / 1000).toFixed(1)} s (engine ${engine.stdout.trim()})`);
}
