// The archive module's entry point (archive/archive_module.hpp).
#include "archive/archive_module.hpp"

namespace tinyfaas {
namespace {

const ArchiveModule kModule{
    {TINYFAAS_VERSION}, &archivemodule::extractZip, &archivemodule::packFunctionDirectory, &archivemodule::writeTar};

}  // namespace
}  // namespace tinyfaas

TINYFAAS_MODULE_EXPORT const void* tinyfaas_module_archive() { return &tinyfaas::kModule; }
