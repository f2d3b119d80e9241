/* node/agent.h - `trib agent`: the process around a node (node/node.h).
 * Owns: parsing the agent's options, wiring the node, the gossip loop and the HTTP server
 * together, signals and orderly shutdown. Must not: implement any of them. */
#ifndef TRIB_AGENT_H
#define TRIB_AGENT_H

int agent_main(int argc, char **argv);

#endif
