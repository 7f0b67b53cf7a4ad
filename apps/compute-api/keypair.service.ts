import { Injectable } from '@nestjs/common';
import { BadRequestError, ConflictError, NotFoundError } from '@novum/common';
import { KeyPairEntity, nowIso } from '@novum/db';
import { ComputeStore, isUniqueViolation } from './compute.store';
import {
  GeneratedKey,
  generateSshKey,
  generateX509Key,
  InvalidKeyError,
  sshFingerprint,
  x509Fingerprint,
} from './key-material';
import { ApiVersion } from './microversion';
import { QuotaService } from './quota.service';

export interface KeyPairRequest {
  name: string;
  publicKey?: string;
  type: 'ssh' | 'x509';
  userId: string;
  projectId: string;
}

export interface CreatedKeyPair {
  keypair: KeyPairEntity;
  privateKey?: string;
}

/** Key pairs belong to users; names are unique per user (a database constraint). */
@Injectable()
export class KeyPairService {
  constructor(
    private readonly store: ComputeStore,
    private readonly quotas: QuotaService,
  ) {}

  async create(request: KeyPairRequest, version: ApiVersion): Promise<CreatedKeyPair> {
    const safe = version.atLeast('2.92') ? /^[a-zA-Z0-9 @._-]+$/ : /^[a-zA-Z0-9 _-]+$/;
    if (!safe.test(request.name)) throw new BadRequestError('Keypair name contains unsafe characters');
    if (version.atLeast('2.92') && request.publicKey === undefined) {
      throw new BadRequestError(
        "Invalid input for field/attribute keypair. 'public_key' is a required property",
      );
    }
    const used = await this.store.keyPairs.countBy({ userId: request.userId });
    await this.quotas.checkOneMore(
      request.projectId,
      'key_pairs',
      used,
      'Quota exceeded, too many key pairs.',
    );
    let generated: GeneratedKey | undefined;
    let publicKey: string;
    let fingerprint: string;
    if (request.publicKey === undefined) {
      generated = request.type === 'x509' ? await generateX509Key(request.name) : await generateSshKey('rsa');
      publicKey = generated.publicKey;
      fingerprint = generated.fingerprint;
    } else {
      publicKey = request.publicKey;
      try {
        fingerprint = request.type === 'x509' ? x509Fingerprint(publicKey) : sshFingerprint(publicKey);
      } catch (error) {
        if (!(error instanceof InvalidKeyError)) throw error;
        throw new BadRequestError('Keypair data is invalid: failed to generate fingerprint');
      }
    }
    const keypair = this.store.keyPairs.create({
      userId: request.userId,
      name: request.name,
      type: request.type,
      publicKey,
      fingerprint,
      createdAt: nowIso(),
    });
    try {
      await this.store.keyPairs.insert(keypair);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      throw new ConflictError(`Key pair '${request.name}' already exists.`);
    }
    // Nova's quota recheck: parallel creates may all pass the first check; the count after the insert decides.
    const after = await this.store.keyPairs.countBy({ userId: request.userId });
    try {
      await this.quotas.checkOneMore(
        request.projectId,
        'key_pairs',
        after - 1,
        'Quota exceeded, too many key pairs.',
      );
    } catch (error) {
      await this.store.keyPairs.delete({ id: keypair.id });
      throw error;
    }
    return { keypair, privateKey: generated?.privateKey };
  }

  async get(userId: string, name: string): Promise<KeyPairEntity> {
    const keypair = await this.store.keyPairs.findOneBy({ userId, name });
    if (!keypair) throw new NotFoundError(`Keypair ${name} not found for user ${userId}`);
    return keypair;
  }

  /** A user's key pairs by name, after `marker` (a name), at most `limit`. */
  async list(userId: string, limit?: number, marker?: string): Promise<KeyPairEntity[]> {
    const qb = this.store.keyPairs
      .createQueryBuilder('k')
      .where('k.user_id = :userId', { userId })
      .orderBy('k.name', 'ASC')
      .addOrderBy('k.id', 'ASC');
    if (marker !== undefined) {
      if (!(await this.store.keyPairs.existsBy({ userId, name: marker }))) {
        throw new BadRequestError(`marker [${marker}] not found`);
      }
      qb.andWhere('k.name > :marker', { marker });
    }
    if (limit !== undefined) qb.take(limit);
    return qb.getMany();
  }

  async delete(userId: string, name: string): Promise<void> {
    const result = await this.store.keyPairs.delete({ userId, name });
    if (!result.affected) throw new NotFoundError(`Keypair ${name} not found for user ${userId}`);
  }
}
