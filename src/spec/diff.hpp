// What a reload changes: a running tree and a new spec in, the plan that makes
// the tree match it out (core/reload.hpp carries it out). Pure: it reads the
// nodes and both definitions, and changes nothing.
//
// A node's identity is its path and kind: a node whose path and kind are in
// both the tree and the spec is the same node, compared field by field:
//   command, env, cwd, user (and its passwd entry), group,
//   ready, stdout, stderr                                      -> restart
//   restart, start_timeout, stop_signal, stop_timeout, join,
//   backoff, start                                             -> update
//   a supervisor's strategy, max_restarts, period, backoff
//   (its own and its body's), start, child order               -> update
//   (`start` says how a new node begins: a change of it leaves a node
//   running or stopped as it is)
//   a pool's instances                                         -> add/remove of instances
//   only in the spec -> add; only in the tree -> remove (nodes added at run time
//   are kept); same path, other kind -> remove and add.
#pragma once

#include <string>
#include <vector>

#include "core/reload.hpp"
#include "core/tree.hpp"
#include "spec/spec.hpp"

namespace chip::spec {

// True when A and B start the same process (every launch field but join).
bool same_start(const Launch &a, const Launch &b);

// The plan that makes the tree under ROOT match NEXT (a root supervisor body).
core::Plan diff(const core::Node &root, const core::SupervisorSpec &next);

struct RegistryChanges {
    std::vector<RegistrySpec> added;
    std::vector<std::string> removed;
    std::vector<std::string> refused;  // why a change cannot be made while running
};
// Registries only in NEXT (added), only in OLD (removed), and capacity changes (refused).
RegistryChanges diff_registries(const std::vector<RegistrySpec> &old,
                                const std::vector<RegistrySpec> &next);

}  // namespace chip::spec
