import { IsIn, IsString, Length } from 'class-validator';
import { MEMBER_STATUSES } from '../model';

export class MemberCreateBody {
  @IsString() @Length(1, 255) member: string;
}

export class MemberUpdateBody {
  @IsIn(MEMBER_STATUSES) status: (typeof MEMBER_STATUSES)[number];
}
