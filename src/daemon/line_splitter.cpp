#include "daemon/line_splitter.hpp"

namespace chip::daemon {

void LineSplitter::feed(std::string_view data, const Emit &emit) {
    auto last_nl = data.rfind('\n');
    if (last_nl == std::string_view::npos) {
        partial_.append(data);
        if (partial_.size() >= max_) {
            partial_.push_back('\n');
            emit(partial_);
            partial_.clear();
        }
        return;
    }
    std::size_t start = 0;
    if (!partial_.empty()) {
        auto first_nl = data.find('\n');
        partial_.append(data.substr(0, first_nl + 1));
        emit(partial_);
        partial_.clear();
        start = first_nl + 1;
    }
    if (start < last_nl + 1) emit(data.substr(start, last_nl + 1 - start));
    partial_.assign(data.substr(last_nl + 1));
}

void LineSplitter::finish(const Emit &emit) {
    if (partial_.empty()) return;
    partial_.push_back('\n');
    emit(partial_);
    partial_.clear();
}

}  // namespace chip::daemon
