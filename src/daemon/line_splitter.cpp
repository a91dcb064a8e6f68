#include "daemon/line_splitter.hpp"

namespace chip::daemon {

void LineSplitter::feed(std::string_view data, const Emit &emit) {
    if (data.empty()) return;
    // First the kept line: completed by DATA, or cut where it reaches the
    // maximum. Exactly the maximum waits: the next byte may be its newline.
    if (!partial_.empty()) {
        auto nl = data.find('\n');
        std::size_t len = nl == std::string_view::npos ? data.size() : nl;
        std::size_t room = max_ - partial_.size();
        if (len > room) {
            partial_.append(data.substr(0, room));
            data.remove_prefix(room);
        } else {
            partial_.append(data.substr(0, len));
            if (nl == std::string_view::npos) return;
            data.remove_prefix(nl + 1);
        }
        partial_.push_back('\n');
        emit(partial_);
        partial_.clear();
    }
    // Then runs of whole lines straight from DATA, a long line cut on the way.
    std::size_t run = 0, at = 0;
    while (at < data.size()) {
        auto nl = data.find('\n', at);
        std::size_t len = (nl == std::string_view::npos ? data.size() : nl) - at;
        if (len > max_) {
            if (at > run) emit(data.substr(run, at - run));
            piece_.assign(data.substr(at, max_));
            piece_.push_back('\n');
            emit(piece_);
            at += max_;
            run = at;
            continue;
        }
        if (nl == std::string_view::npos) break;
        at = nl + 1;
    }
    if (at > run) emit(data.substr(run, at - run));
    partial_.assign(data.substr(at));
}

void LineSplitter::finish(const Emit &emit) {
    if (partial_.empty()) return;
    partial_.push_back('\n');
    emit(partial_);
    partial_.clear();
}

}  // namespace chip::daemon
