import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claim, managerProblem, placementProblem, swarmNodes } from '../../src/docker/swarm.js';

// The swarm as admission reads it, from documents shaped as Docker 20.10 answers /info, /nodes and /tasks.

const GiB = 1024 ** 3;
const nodeDoc = (id: string, host: string, cpus: number, memory: number, state = 'ready', availability = 'active') => ({
  ID: id,
  Description: { Hostname: host, Resources: { NanoCPUs: cpus * 1e9, MemoryBytes: memory } },
  Spec: { Availability: availability },
  Status: { State: state },
});
const taskDoc = (node: string, state: string, cpus: number, memory: number) => ({ NodeID: node, Status: { State: state }, Spec: { Resources: { Reservations: { NanoCPUs: cpus * 1e9, MemoryBytes: memory } } } });

describe('swarm view', () => {
  it('managerProblem - an engine outside a swarm, or a worker, cannot take services; a manager can', () => {
    assert.match(managerProblem({ Swarm: { LocalNodeState: 'inactive', ControlAvailable: false } }, '/s')!, /not part of a swarm \(Swarm: inactive\); run docker swarm init/);
    assert.match(managerProblem({}, '/s')!, /not part of a swarm/);
    assert.match(managerProblem({ Swarm: { LocalNodeState: 'active', ControlAvailable: false } }, '/s')!, /a swarm worker, not a manager/);
    assert.equal(managerProblem({ Swarm: { LocalNodeState: 'active', ControlAvailable: true } }, '/s'), undefined);
  });

  it('swarmNodes - subtracts what placed tasks reserve, not what finished or pending ones did', () => {
    const nodes = swarmNodes(
      [nodeDoc('n1', 'big', 8, 32 * GiB), nodeDoc('n2', 'gone', 4, 8 * GiB, 'down'), nodeDoc('n3', 'drained', 4, 8 * GiB, 'ready', 'drain')],
      [taskDoc('n1', 'running', 2, 4 * GiB), taskDoc('n1', 'preparing', 1, 4 * GiB), taskDoc('n1', 'complete', 4, 16 * GiB), { Status: { State: 'pending' } }],
    );
    assert.deepEqual(
      nodes.map((n) => [n.name, n.ready, n.takesWork, n.cpusFree, n.memoryFree / GiB]),
      [
        ['big', true, true, 5, 24],
        ['gone', false, false, 4, 8],
        ['drained', true, false, 4, 8],
      ],
    );
  });

  it('claim - a job handed to Swarm counts against the roomiest node that fits it until the next reading', () => {
    const view = { problem: undefined, nodes: swarmNodes([nodeDoc('n1', 'a', 2, 4 * GiB), nodeDoc('n2', 'b', 2, 6 * GiB)], []) };
    claim(view, { cpus: 1, memory: 4 * GiB });
    assert.deepEqual(view.nodes.map((n) => n.memoryFree / GiB), [4, 2]);
    claim(view, { cpus: 1, memory: 4 * GiB });
    assert.deepEqual(view.nodes.map((n) => n.memoryFree / GiB), [0, 2]);
    assert.match(placementProblem(view, { cpus: 0, memory: 4 * GiB })!, /no node has 4\.0 GiB free \(most free: 1 cpus and 2\.0 GiB on b\)/);
  });
});
