#include "client/published.hpp"

#include <cerrno>

#include "common/names.hpp"

namespace chip::client {

Result<os::SocketFolder> reach_socket(const std::string &socket_path, uid_t uid,
                                      uid_t &socket_owner) {
    auto folder = os::open_socket_folder(socket_path, uid);
    if (!folder)
        return make_error(folder.error().code,
                          "cannot reach chipd at " + socket_path + ": " + folder.error().message);
    auto owner = os::socket_owner(*folder);
    if (!owner) return owner.error();
    socket_owner = *owner;
    return folder;
}

Result<Published> read_published(const os::SocketFolder &folder, uid_t socket_owner) {
    // In a folder the user named, whoever may swap the socket may swap the
    // index too: only a folder of root or the socket's owner, closed to others.
    if (folder.kind == SocketFolderKind::Given)
        if (auto why = os::given_folder_refusal(folder.facts, socket_owner))
            return make_error(EPERM,
                              "refusing the registries published in " + folder.path + ": " + *why);
    const std::string index = registry_index_name(folder.socket_name);
    auto file = os::read_trusted_file(folder, index, socket_owner, registry::kMaxIndexSize);
    if (!file) {
        if (file.error().code == ENOENT)
            return make_error(ENOENT, "chipd at " + folder.path + "/" + folder.socket_name +
                                          " publishes no registries (no " + index + ")");
        return make_error(file.error().code == EFBIG ? ESTALE : file.error().code,
                          file.error().message);
    }
    auto entries = registry::parse_index(file->text);
    if (!entries)
        return make_error(ESTALE,
                          "refusing " + folder.path + "/" + index + ": " + entries.error().message);
    return Published{std::move(*entries), file->owner};
}

Result<Published> find_published(const std::string &socket_path, uid_t uid) {
    uid_t owner = 0;
    auto folder = reach_socket(socket_path, uid, owner);
    if (!folder) return folder.error();
    return read_published(*folder, owner);
}

}  // namespace chip::client
