/** Named id types: a profile id is never passed where a module id is expected. */
export type ProfileId = string & { readonly __brand: 'ProfileId' };
export type SystemId = string & { readonly __brand: 'SystemId' };
export type ZoneId = string & { readonly __brand: 'ZoneId' };
export type ModuleId = string & { readonly __brand: 'ModuleId' };

export const profileId = (id: string): ProfileId => id as ProfileId;
export const systemId = (id: string): SystemId => id as SystemId;
export const zoneId = (id: string): ZoneId => id as ZoneId;
export const moduleId = (id: string): ModuleId => id as ModuleId;
