#pragma once
// Facts about this build, recorded in every run folder's meta.json.

namespace mnist {

/// `git describe --always --dirty` of the sources this binary was built from, or "unknown".
const char* git_commit();
/// The project's version (CMake's PROJECT_VERSION).
const char* project_version();

}  // namespace mnist
